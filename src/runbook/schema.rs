//! JSON Schemas (draft-07) of the runbook language and the daemon config,
//! generated from the same types the loader decodes.

use serde_json::{Value, json};

use super::spec::{ActionCall, RunbookSpec, StepSpec};
use crate::catalogue::ActionKind;

/// The JSON Schema of runbooks: the spec types, plus for each action the
/// shape of its `with` block (selected by `action`).
pub fn runbook() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let withs: Vec<(&str, Value)> = ActionKind::ALL
        .iter()
        .map(|a| (a.name(), a.with_schema(&mut generator).to_value()))
        .collect();
    let mut root = generator.into_root_schema_for::<RunbookSpec>().to_value();
    let conditions: Vec<Value> = withs
        .into_iter()
        .map(|(name, schema)| {
            json!({
                "if": { "properties": { "action": { "const": name } }, "required": ["action"] },
                "then": { "properties": { "with": schema } }
            })
        })
        .collect();
    for def in [step_name(), call_name()] {
        if let Some(step) = root
            .pointer_mut(&format!("/definitions/{def}"))
            .and_then(Value::as_object_mut)
        {
            step.insert("allOf".into(), Value::Array(conditions.clone()));
        }
    }
    root
}

/// The JSON Schema of the daemon config file.
pub fn config() -> Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    generator
        .into_root_schema_for::<crate::config::ConfigSpec>()
        .to_value()
}

fn step_name() -> String {
    <StepSpec as schemars::JsonSchema>::schema_name().into_owned()
}

fn call_name() -> String {
    <ActionCall as schemars::JsonSchema>::schema_name().into_owned()
}
