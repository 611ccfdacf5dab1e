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
    // Decoded with defaults so that a missing one hides no other problem,
    // but required all the same.
    root["required"] = json!(super::spec::REQUIRED);
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
    // A step takes an action, or runs a child runbook.
    if let Some(step) = root
        .pointer_mut(&format!("/definitions/{}", step_name()))
        .and_then(Value::as_object_mut)
    {
        step.insert(
            "oneOf".into(),
            json!([{ "required": ["action"] }, { "required": ["runbook"] }]),
        );
    }
    allow_references(&mut root);
    root
}

/// Lets a `${param}` reference stand wherever a number, a boolean or a
/// list (a `list` parameter) is expected: editors check the file as
/// written, before substitution.
fn allow_references(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for value in map.values_mut() {
                allow_references(value);
            }
            let typed =
                |t: &Value| matches!(t.as_str(), Some("integer" | "number" | "boolean" | "array"));
            let wants_scalar = map
                .get("type")
                .is_some_and(|t| typed(t) || t.as_array().is_some_and(|a| a.iter().any(typed)));
            if wants_scalar {
                let original = Value::Object(std::mem::take(map));
                let description = original.get("description").cloned();
                map.insert(
                    "anyOf".into(),
                    json!([original, { "type": "string", "pattern": r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$" }]),
                );
                if let Some(d) = description {
                    map.insert("description".into(), d);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(allow_references),
        _ => {}
    }
}

fn step_name() -> String {
    <StepSpec as schemars::JsonSchema>::schema_name().into_owned()
}

fn call_name() -> String {
    <ActionCall as schemars::JsonSchema>::schema_name().into_owned()
}
