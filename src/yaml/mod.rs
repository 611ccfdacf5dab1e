//! A YAML document as a tree of located nodes, and the serde bridge that
//! decodes typed values from it while gathering every problem.
//!
//! Parsing goes through `saphyr-parser` events, so every node keeps the line
//! and column where it starts. The tree is built iteratively with hard limits
//! (nesting depth, node count after alias expansion), so hostile input is
//! refused with a located error instead of exhausting the stack or memory.

mod de;

pub use de::{Checked, Problem, Spanned, decode};

use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Deepest nesting of sequences and mappings accepted.
pub const MAX_DEPTH: usize = 64;
/// Most nodes accepted in one document, counting each alias expansion.
pub const MAX_NODES: usize = 4_000_000;

/// A position in a source text: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Loc {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub col: u32,
}

impl Loc {
    /// A location for problems that have no place in the text.
    pub const UNKNOWN: Loc = Loc { line: 0, col: 0 };

    fn from_span(span: &Span) -> Loc {
        Loc {
            line: u32::try_from(span.start.line()).unwrap_or(u32::MAX),
            col: u32::try_from(span.start.col() + 1).unwrap_or(u32::MAX),
        }
    }

    /// Whether this location points into the text.
    pub fn is_known(&self) -> bool {
        self.line > 0
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// How a scalar was written, which decides how it is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unquoted: typed by the YAML core schema (`true`, `12`, `null`, ...).
    Plain,
    /// Quoted or block: always a string.
    Quoted,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An empty value or an explicit `null` / `~`.
    Null,
    /// A scalar with its text, typed lazily by what the reader asks for.
    Scalar(String, Style),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<(Node, Node)>),
}

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub loc: Loc,
    /// Its content.
    pub value: Value,
}

impl Node {
    /// A node with no location, for values made by the program.
    pub fn synthetic(value: Value) -> Node {
        Node {
            loc: Loc::UNKNOWN,
            value,
        }
    }

    /// A plain string scalar.
    pub fn string(loc: Loc, text: impl Into<String>) -> Node {
        Node {
            loc,
            value: Value::Scalar(text.into(), Style::Quoted),
        }
    }

    /// The entry of a mapping under a string key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// A short name of the node's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Scalar(..) => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The node as JSON, scalars typed by the YAML core schema (what an
    /// editor's YAML language server does before applying a JSON Schema).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Scalar(text, Style::Quoted) => J::String(text.clone()),
            Value::Scalar(text, Style::Plain) => match text.as_str() {
                "true" | "True" | "TRUE" => J::Bool(true),
                "false" | "False" | "FALSE" => J::Bool(false),
                _ => {
                    if let Ok(n) = text.parse::<i64>() {
                        J::from(n)
                    } else if let Some(f) = text
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                    {
                        J::Number(f)
                    } else {
                        J::String(text.clone())
                    }
                }
            },
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.as_str()
                                .map_or_else(|| k.to_json().to_string(), str::to_string),
                            v.to_json(),
                        )
                    })
                    .collect(),
            ),
        }
    }

    /// Number of nodes in this subtree, itself included.
    pub fn size(&self) -> usize {
        let mut count = 0;
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            count += 1;
            match &node.value {
                Value::Seq(items) => stack.extend(items.iter()),
                Value::Map(entries) => {
                    for (k, v) in entries {
                        stack.push(k);
                        stack.push(v);
                    }
                }
                Value::Null | Value::Scalar(..) => {}
            }
        }
        count
    }
}

/// Why a text is not a YAML document lifeboat accepts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{loc}: {message}")]
pub struct SyntaxError {
    /// Where the problem was found.
    pub loc: Loc,
    /// What is wrong.
    pub message: String,
}

impl SyntaxError {
    fn new(loc: Loc, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            loc,
            message: message.into(),
        }
    }
}

/// A collection being built while its events arrive.
enum Open {
    Seq {
        loc: Loc,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        loc: Loc,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

/// Parse one YAML document into a located tree.
///
/// An empty text is a `Null` node. More than one document, nesting deeper
/// than [`MAX_DEPTH`], or more than [`MAX_NODES`] nodes after alias expansion
/// are refused.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut anchors: std::collections::HashMap<usize, Node> = std::collections::HashMap::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;

    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            SyntaxError::new(
                Loc {
                    line: u32::try_from(e.marker().line()).unwrap_or(u32::MAX),
                    col: u32::try_from(e.marker().col() + 1).unwrap_or(u32::MAX),
                },
                format!("YAML syntax: {}", e.info()),
            )
        })?;
        let loc = Loc::from_span(&span);
        let finished: Node = match event {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(SyntaxError::new(
                        loc,
                        "more than one YAML document; a file holds exactly one",
                    ));
                }
                continue;
            }
            Event::SequenceStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(SyntaxError::new(
                        loc,
                        format!("nesting deeper than {MAX_DEPTH} levels"),
                    ));
                }
                stack.push(Open::Seq {
                    loc,
                    anchor,
                    items: Vec::new(),
                });
                continue;
            }
            Event::MappingStart(anchor, _) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(SyntaxError::new(
                        loc,
                        format!("nesting deeper than {MAX_DEPTH} levels"),
                    ));
                }
                stack.push(Open::Map {
                    loc,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Open::Seq { loc, anchor, items }) => remember(
                    &mut anchors,
                    anchor,
                    Node {
                        loc,
                        value: Value::Seq(items),
                    },
                ),
                _ => return Err(SyntaxError::new(loc, "unbalanced end of sequence")),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Open::Map {
                    loc,
                    anchor,
                    entries,
                    key: None,
                }) => remember(
                    &mut anchors,
                    anchor,
                    Node {
                        loc,
                        value: Value::Map(entries),
                    },
                ),
                _ => return Err(SyntaxError::new(loc, "unbalanced end of mapping")),
            },
            Event::Scalar(text, style, anchor, _tag) => {
                nodes += 1;
                let value = match style {
                    ScalarStyle::Plain if is_null(&text) => Value::Null,
                    ScalarStyle::Plain => Value::Scalar(text.into_owned(), Style::Plain),
                    _ => Value::Scalar(text.into_owned(), Style::Quoted),
                };
                remember(&mut anchors, anchor, Node { loc, value })
            }
            Event::Alias(id) => {
                let Some(target) = anchors.get(&id) else {
                    return Err(SyntaxError::new(loc, "alias to an unknown anchor"));
                };
                nodes = nodes.saturating_add(target.size());
                if nodes > MAX_NODES {
                    return Err(SyntaxError::new(
                        loc,
                        format!("document expands to more than {MAX_NODES} nodes (alias bomb?)"),
                    ));
                }
                let mut copy = target.clone();
                copy.loc = loc;
                copy
            }
        };
        if matches!(finished.value, Value::Seq(_) | Value::Map(_)) {
            nodes += 1;
        }
        if nodes > MAX_NODES {
            return Err(SyntaxError::new(
                loc,
                format!("document has more than {MAX_NODES} nodes"),
            ));
        }
        match stack.last_mut() {
            None => root = Some(finished),
            Some(Open::Seq { items, .. }) => items.push(finished),
            Some(Open::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(finished),
                Some(k) => entries.push((k, finished)),
            },
        }
    }
    Ok(root.unwrap_or(Node {
        loc: Loc { line: 1, col: 1 },
        value: Value::Null,
    }))
}

fn remember(
    anchors: &mut std::collections::HashMap<usize, Node>,
    anchor: usize,
    node: Node,
) -> Node {
    if anchor > 0 {
        anchors.insert(anchor, node.clone());
    }
    node
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_carry_line_and_column() {
        let doc = parse("a: 1\nb:\n  - x\n  - 'y'\n").unwrap();
        let b = doc.get("b").unwrap();
        let Value::Seq(items) = &b.value else {
            panic!("b is a list")
        };
        assert_eq!(items[0].loc, Loc { line: 3, col: 5 });
        assert_eq!(items[1].value, Value::Scalar("y".into(), Style::Quoted));
        assert_eq!(doc.get("a").unwrap().loc, Loc { line: 1, col: 4 });
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("alias bomb"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(&text).is_err());
        let text = (0..100)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .collect::<String>();
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("nesting"), "{err}");
    }

    #[test]
    fn second_document_is_refused() {
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
    }

    #[test]
    fn empty_text_is_null() {
        assert_eq!(parse("").unwrap().value, Value::Null);
    }
}
