//! `${...}` references in runbook values.
//!
//! `${name}` is a parameter, replaced when the runbook is loaded.
//! `${steps.<id>.outputs.<key>}` and `${run.id}` / `${run.mode}` are resolved
//! by the engine at run time and are left in place here. `$${` writes a
//! literal `${`.

use std::collections::BTreeMap;

use crate::yaml::{Loc, Node, Style, Value};

/// One piece of a string with references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Literal text (with `$${` already unescaped).
    Text(std::borrow::Cow<'a, str>),
    /// A reference, without `${` and `}`.
    Ref {
        /// The reference's inside, e.g. `dr_region`.
        name: &'a str,
        /// Character offset of the `$` in the string.
        offset: usize,
    },
}

/// A reference lifeboat resolves at run time rather than at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeRef<'a> {
    /// `${steps.<step>.outputs.<key>}`.
    StepOutput {
        /// The step.
        step: &'a str,
        /// The output key.
        key: &'a str,
    },
    /// `${run.id}`.
    RunId,
    /// `${run.mode}`.
    RunMode,
}

/// Classify a reference name as a run-time reference, if it is one.
pub fn runtime_ref(name: &str) -> Option<Result<RuntimeRef<'_>, String>> {
    if let Some(rest) = name.strip_prefix("steps.") {
        // A child runbook's step is `<step>.<its step>`: ids have no dots.
        return Some(match rest.rsplit_once(".outputs.") {
            Some((step, key))
                if !key.is_empty()
                    && !key.contains('.')
                    && step.split('.').all(|part| !part.is_empty()) =>
            {
                Ok(RuntimeRef::StepOutput { step, key })
            }
            _ => Err(format!(
                "`${{{name}}}` is not a step output; write `${{steps.<step>.outputs.<key>}}`"
            )),
        });
    }
    if let Some(rest) = name.strip_prefix("run.") {
        return Some(match rest {
            "id" => Ok(RuntimeRef::RunId),
            "mode" => Ok(RuntimeRef::RunMode),
            _ => Err(format!(
                "unknown run reference `${{{name}}}`; use `${{run.id}}` or `${{run.mode}}`"
            )),
        });
    }
    None
}

/// Split a string into text and references.
pub fn pieces(text: &str) -> Result<Vec<Piece<'_>>, (usize, String)> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    let mut offset = 0usize;
    while let Some(pos) = rest.find('$') {
        let after = &rest[pos..];
        if let Some(escaped) = after.strip_prefix("$${") {
            literal.push_str(&rest[..pos]);
            literal.push_str("${");
            offset += rest[..pos].chars().count() + 3;
            rest = escaped;
            continue;
        }

        if after.starts_with("${") {
            literal.push_str(&rest[..pos]);
            let dollar_offset = offset + rest[..pos].chars().count();
            let Some(end) = after.find('}') else {
                return Err((
                    dollar_offset,
                    "unterminated `${`: add the closing `}`".into(),
                ));
            };
            let name = &after[2..end];
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Err((
                    dollar_offset,
                    format!("`${{{name}}}` is not a valid reference"),
                ));
            }
            if !literal.is_empty() {
                out.push(Piece::Text(std::mem::take(&mut literal).into()));
            }
            out.push(Piece::Ref {
                name,
                offset: dollar_offset,
            });
            offset = dollar_offset + end + 1;
            rest = &after[end + 1..];
            continue;
        }
        literal.push_str(&rest[..=pos]);
        offset += rest[..=pos].chars().count();
        rest = &rest[pos + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        out.push(Piece::Text(literal.into()));
    }
    Ok(out)
}

/// The value a parameter is replaced by.
#[derive(Debug, Clone, PartialEq)]
pub enum Replacement {
    /// A scalar's text.
    Scalar(String),
    /// A list of strings (only where the reference is the whole value).
    List(Vec<String>),
}

/// A problem found while substituting.
#[derive(Debug, Clone, PartialEq)]
pub struct InterpProblem {
    /// Where.
    pub loc: Loc,
    /// What.
    pub message: String,
}

/// Replace parameter references in every scalar of `node` (in place).
/// Run-time references are kept as written. Problems are appended.
pub fn substitute(
    node: &mut Node,
    params: &BTreeMap<String, Replacement>,
    problems: &mut Vec<InterpProblem>,
) {
    let mut stack: Vec<&mut Node> = vec![node];
    while let Some(node) = stack.pop() {
        if let Value::Scalar(text, style) = &node.value {
            if let Some(value) = substitute_scalar(text, *style, node.loc, params, problems) {
                node.value = value;
            }
            continue;
        }
        match &mut node.value {
            Value::Seq(items) => stack.extend(items.iter_mut()),
            // Keys take parameters too: `weights: { "${dr_region}": 100 }`.
            Value::Map(entries) => stack.extend(entries.iter_mut().flat_map(|(k, v)| [k, v])),
            Value::Null | Value::Scalar(..) => {}
        }
    }
}

/// The new value of one scalar, or `None` when it stays as it is.
fn substitute_scalar(
    text: &str,
    style: Style,
    loc: Loc,
    params: &BTreeMap<String, Replacement>,
    problems: &mut Vec<InterpProblem>,
) -> Option<Value> {
    if !text.contains('$') {
        return None;
    }
    let col_shift = if style == Style::Plain { 0 } else { 1 };
    // Columns inside a multi-line scalar are not worth guessing: use its start.
    let at = |offset: usize| {
        if text.contains('\n') {
            loc
        } else {
            Loc {
                line: loc.line,
                col: loc.col + u32::try_from(offset + col_shift).unwrap_or(0),
            }
        }
    };
    let parts = match pieces(text) {
        Ok(p) => p,
        Err((offset, message)) => {
            problems.push(InterpProblem {
                loc: at(offset),
                message,
            });
            return None;
        }
    };
    let whole = parts.len() == 1;
    let mut out = String::new();
    for part in &parts {
        match part {
            // Escapes stay escaped until the run-time pass writes the final text.
            Piece::Text(t) => out.push_str(&t.replace("${", "$${")),
            Piece::Ref { name, offset } => match runtime_ref(name) {
                Some(Ok(_)) => {
                    out.push_str("${");
                    out.push_str(name);
                    out.push('}');
                }
                Some(Err(message)) => problems.push(InterpProblem {
                    loc: at(*offset),
                    message,
                }),
                None => match params.get(*name) {
                    Some(Replacement::Scalar(v)) => out.push_str(v),
                    Some(Replacement::List(items)) if whole => {
                        return Some(Value::Seq(
                            items
                                .iter()
                                .map(|s| Node {
                                    loc,
                                    value: Value::Scalar(s.clone(), Style::Quoted),
                                })
                                .collect(),
                        ));
                    }
                    Some(Replacement::List(_)) => problems.push(InterpProblem {
                        loc: at(*offset),
                        message: format!(
                            "list parameter `{name}` must stand alone as the whole value"
                        ),
                    }),
                    None => {
                        // Keep the reference, so later checks see it as unresolved.
                        out.push_str(&format!("${{{name}}}"));
                        let mut message = format!("undefined parameter `{name}`");
                        match crate::suggest::closest(name, params.keys().map(String::as_str)) {
                            Some(best) => message.push_str(&format!(", did you mean `{best}`?")),
                            None => message.push_str("; declare it under `params`"),
                        }
                        problems.push(InterpProblem {
                            loc: at(*offset),
                            message,
                        });
                    }
                },
            },
        }
    }
    if out == text {
        return None;
    }
    // A value that is one parameter is typed by its text, as if written plainly.
    Some(Value::Scalar(out, if whole { Style::Plain } else { style }))
}

/// What run-time references resolve to.
pub struct RuntimeValues<'a> {
    /// `${run.id}`.
    pub run_id: &'a str,
    /// `${run.mode}`.
    pub mode: &'a str,
    /// Outputs of finished steps, by step id.
    pub outputs: &'a dyn Fn(&str) -> Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// Resolve run-time references and `$${` escapes in every scalar, giving
/// the final value an action receives. A reference that is the whole value
/// of a scalar and names a list output becomes a list.
pub fn resolve_runtime(node: &Node, values: &RuntimeValues<'_>) -> Result<Node, String> {
    let mut node = node.clone();
    let mut stack: Vec<&mut Node> = vec![&mut node];
    while let Some(n) = stack.pop() {
        if let Value::Scalar(text, style) = &n.value {
            if text.contains('$') {
                n.value = resolve_scalar(text, *style, values)?;
            }
            continue;
        }
        match &mut n.value {
            Value::Seq(items) => stack.extend(items.iter_mut()),
            Value::Map(entries) => stack.extend(entries.iter_mut().map(|(_, v)| v)),
            Value::Null | Value::Scalar(..) => {}
        }
    }
    Ok(node)
}

fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn resolve_scalar(text: &str, style: Style, values: &RuntimeValues<'_>) -> Result<Value, String> {
    let parts = pieces(text).map_err(|(_, message)| message)?;
    let whole = parts.len() == 1;
    let mut out = String::new();
    for part in parts {
        match part {
            Piece::Text(t) => out.push_str(&t),
            Piece::Ref { name, .. } => match runtime_ref(name) {
                Some(Ok(RuntimeRef::RunId)) => out.push_str(values.run_id),
                Some(Ok(RuntimeRef::RunMode)) => out.push_str(values.mode),
                Some(Ok(RuntimeRef::StepOutput { step, key })) => {
                    let outputs = (values.outputs)(step).ok_or_else(|| {
                        format!("`${{{name}}}`: step `{step}` has no outputs (it did not succeed)")
                    })?;
                    let value = outputs.get(key).ok_or_else(|| {
                        format!("`${{{name}}}`: step `{step}` has no output `{key}`")
                    })?;
                    match value {
                        serde_json::Value::Array(items) if whole => {
                            return Ok(Value::Seq(
                                items
                                    .iter()
                                    .map(|item| {
                                        Node::synthetic(Value::Scalar(
                                            json_text(item),
                                            Style::Quoted,
                                        ))
                                    })
                                    .collect(),
                            ));
                        }
                        other => out.push_str(&json_text(other)),
                    }
                }
                Some(Err(message)) => return Err(message),
                // Parameters were substituted at load time; what is left
                // was an unset placeholder, which `load` refuses to run.
                None => return Err(format!("`${{{name}}}` was not substituted")),
            },
        }
    }
    Ok(Value::Scalar(out, if whole { Style::Plain } else { style }))
}

/// Rename the steps that `${steps.<step>.outputs.<key>}` references in
/// the scalars of `node` name, by `names` (old id to new); everything
/// else is kept as written.
pub fn rename_steps(node: &mut Node, names: &std::collections::HashMap<String, String>) {
    let mut stack: Vec<&mut Node> = vec![node];
    while let Some(node) = stack.pop() {
        match &mut node.value {
            Value::Scalar(text, _) => {
                if let Some(renamed) = renamed(text, names) {
                    *text = renamed;
                }
            }
            Value::Seq(items) => stack.extend(items.iter_mut()),
            Value::Map(entries) => stack.extend(entries.iter_mut().map(|(_, v)| v)),
            Value::Null => {}
        }
    }
}

/// `text` with its step references renamed, or `None` when none is.
fn renamed(text: &str, names: &std::collections::HashMap<String, String>) -> Option<String> {
    if !text.contains("${steps.") {
        return None;
    }
    let parts = pieces(text).ok()?;
    let mut changed = false;
    let mut out = String::with_capacity(text.len() + 16);
    for part in parts {
        match part {
            Piece::Text(t) => out.push_str(&t.replace("${", "$${")),
            Piece::Ref { name, .. } => {
                out.push_str("${");
                match runtime_ref(name) {
                    Some(Ok(RuntimeRef::StepOutput { step, key })) if names.contains_key(step) => {
                        changed = true;
                        out.push_str(&format!("steps.{}.outputs.{key}", names[step]));
                    }
                    _ => out.push_str(name),
                }
                out.push('}');
            }
        }
    }
    changed.then_some(out)
}

/// Every reference in the scalars of `node`, with the scalar's location.
pub fn references(node: &Node) -> Vec<(Loc, String)> {
    let mut out = Vec::new();
    let mut stack = vec![node];
    while let Some(node) = stack.pop() {
        match &node.value {
            Value::Seq(items) => stack.extend(items.iter()),
            Value::Map(entries) => stack.extend(entries.iter().map(|(_, v)| v)),
            Value::Null => {}
            Value::Scalar(text, _) => {
                if let Ok(parts) = pieces(text) {
                    for part in parts {
                        if let Piece::Ref { name, .. } = part {
                            out.push((node.loc, name.to_string()));
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    fn params() -> BTreeMap<String, Replacement> {
        BTreeMap::from([
            (
                "dr_region".to_string(),
                Replacement::Scalar("us-west-2".into()),
            ),
            (
                "ips".to_string(),
                Replacement::List(vec!["1.2.3.4".into(), "5.6.7.8".into()]),
            ),
        ])
    }

    #[test]
    fn replaces_parameters_and_keeps_runtime_references() {
        let mut node =
            parse("a: ${dr_region}\nb: db-${dr_region}-${run.id}\nc: ${ips}\nd: $${literal}\n")
                .unwrap();
        let mut problems = Vec::new();
        substitute(&mut node, &params(), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(node.get("a").unwrap().as_str(), Some("us-west-2"));
        assert_eq!(
            node.get("b").unwrap().as_str(),
            Some("db-us-west-2-${run.id}")
        );
        assert!(matches!(&node.get("c").unwrap().value, Value::Seq(items) if items.len() == 2));
        assert_eq!(node.get("d").unwrap().as_str(), Some("$${literal}"));
    }

    #[test]
    fn undefined_parameter_is_located_at_its_reference() {
        let mut node = parse("a: x-${dr_regoin}\n").unwrap();
        let mut problems = Vec::new();
        substitute(&mut node, &params(), &mut problems);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].loc, Loc { line: 1, col: 6 });
        assert!(
            problems[0].message.contains("did you mean `dr_region`"),
            "{problems:?}"
        );
    }

    #[test]
    fn malformed_references_are_reported() {
        let mut node = parse("a: '${oops'\nb: ${steps.x}\nc: ${run.when}\n").unwrap();
        let mut problems = Vec::new();
        substitute(&mut node, &params(), &mut problems);
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
