//! Serde over located nodes: typed decoding that records problems with their
//! location and keeps going where it can.
//!
//! Three marker types cooperate with this deserializer (and only with it):
//! - [`Spanned<T>`] keeps the location of the value it wraps;
//! - [`Checked<T>`] records a problem decoding its value and stands in as
//!   "absent", so one bad step does not hide the problems of the next;
//! - [`Node`] captures the raw subtree (used for `with` blocks, which are typed
//!   later, once the action and the parameters are known).
//!
//! Unknown fields of a struct are recorded (with a suggestion) and skipped,
//! so every unknown field is reported, not only the first.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::de::Error as _;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Deserializer};

use super::{Loc, Node, Style, Value};

const SPANNED: &str = "$lifeboat::Spanned";
const CHECKED: &str = "$lifeboat::Checked";
const RAW: &str = "$lifeboat::Node";
/// The message of an error already recorded in the problem list.
const RECORDED: &str = "$lifeboat::recorded";

/// One thing wrong with a document, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where it is; [`Loc::UNKNOWN`] when the text has no place for it.
    pub loc: Loc,
    /// What is wrong.
    pub message: String,
}

/// Decode `T` from a node. Returns the value (when it could be built at all)
/// and every problem found, sorted by location.
pub fn decode<T: DeserializeOwned>(node: &Node) -> (Option<T>, Vec<Problem>) {
    let problems = RefCell::new(Vec::new());
    let result = T::deserialize(NodeDe {
        node,
        problems: &problems,
    });
    let mut problems = problems.into_inner();
    let value = match result {
        Ok(v) => Some(v),
        Err(e) if e.message == RECORDED => None,
        Err(e) => {
            problems.push(Problem {
                loc: if e.loc.is_known() { e.loc } else { node.loc },
                message: e.message,
            });
            None
        }
    };
    problems.sort_by_key(|p| p.loc);
    (value, problems)
}

/// A decoding error with the location it was found at.
#[derive(Debug)]
pub struct Error {
    loc: Loc,
    message: String,
}

impl Error {
    fn at(mut self, loc: Loc) -> Error {
        if !self.loc.is_known() {
            self.loc = loc;
        }
        self
    }

    fn new(loc: Loc, message: String) -> Error {
        Error { loc, message }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            loc: Loc::UNKNOWN,
            message: msg.to_string(),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut message = format!("unknown value `{variant}`");
        if let Some(best) = crate::suggest::closest(variant, expected.iter().copied()) {
            message.push_str(&format!(", did you mean `{best}`?"));
        } else {
            message.push_str(&format!(", expected one of {}", quoted_list(expected)));
        }
        Error::custom(message)
    }

    fn missing_field(field: &'static str) -> Self {
        Error::custom(format!("missing field `{field}`"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        Error::custom(format!("duplicate field `{field}`"))
    }
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(node: &Node) -> String {
    match &node.value {
        Value::Null => "nothing (null)".to_string(),
        Value::Scalar(s, _) if s.chars().count() > 40 => {
            format!("`{}...`", s.chars().take(40).collect::<String>())
        }
        Value::Scalar(s, _) => format!("`{s}`"),
        Value::Seq(_) => "a list".to_string(),
        Value::Map(_) => "a mapping".to_string(),
    }
}

#[derive(Clone, Copy)]
struct NodeDe<'a> {
    node: &'a Node,
    problems: &'a RefCell<Vec<Problem>>,
}

impl<'a> NodeDe<'a> {
    fn child(&self, node: &'a Node) -> NodeDe<'a> {
        NodeDe {
            node,
            problems: self.problems,
        }
    }

    fn expected(&self, what: &str) -> Error {
        Error::new(
            self.node.loc,
            format!("expected {what}, found {}", describe(self.node)),
        )
    }

    fn scalar(&self, what: &str) -> Result<&'a str, Error> {
        match &self.node.value {
            Value::Scalar(s, _) => Ok(s),
            _ => Err(self.expected(what)),
        }
    }

    fn record(&self, loc: Loc, message: String) {
        self.problems.borrow_mut().push(Problem { loc, message });
    }
}

fn parse_int<T: std::str::FromStr>(text: &str) -> Option<T> {
    let cleaned: String = text.chars().filter(|c| *c != '_').collect();
    cleaned.strip_prefix('+').unwrap_or(&cleaned).parse().ok()
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

macro_rules! int_methods {
    ($($method:ident => $ty:ty, $visit:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let text = self.scalar("an integer")?;
            match parse_int::<$ty>(text) {
                Some(n) => visitor.$visit::<Error>(n).map_err(|e| e.at(self.node.loc)),
                None => Err(self.expected(concat!("an integer (", stringify!($ty), ")"))),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let loc = self.node.loc;
        match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Scalar(text, Style::Plain) => {
                if let Some(b) = parse_bool(text) {
                    visitor.visit_bool(b)
                } else if let Some(n) = parse_int::<i64>(text) {
                    visitor.visit_i64(n)
                } else if let Some(n) = parse_int::<u64>(text) {
                    visitor.visit_u64(n)
                } else if let Ok(f) = text.parse::<f64>() {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_str(text)
                }
            }
            Value::Scalar(text, Style::Quoted) => visitor.visit_str(text),
            Value::Seq(items) => visitor.visit_seq(NodeSeq::new(self, items.iter())),
            Value::Map(entries) => visitor.visit_map(NodeMap::new(self, entries, None)),
        }
        .map_err(|e: Error| e.at(loc))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let text = self.scalar("true or false")?;
        match parse_bool(text) {
            Some(b) => visitor.visit_bool(b),
            None => Err(self.expected("true or false")),
        }
    }

    int_methods! {
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let text = self.scalar("a number")?;
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => visitor.visit_f64(f),
            _ => Err(self.expected("a number")),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let text = self.scalar("a string")?;
        visitor
            .visit_str::<Error>(text)
            .map_err(|e| e.at(self.node.loc))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.value {
            Value::Null => visitor.visit_unit(),
            _ => Err(self.expected("nothing (null)")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == CHECKED {
            return visitor.visit_newtype_struct(Recording(self));
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Seq(items) => visitor
                .visit_seq(NodeSeq::new(self, items.iter()))
                .map_err(|e| e.at(self.node.loc)),
            _ => Err(self.expected("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Map(entries) => visitor
                .visit_map(NodeMap::new(self, entries, None))
                .map_err(|e| e.at(self.node.loc)),
            _ => Err(self.expected("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == SPANNED {
            return visitor.visit_map(SpannedMap { de: self, next: 0 });
        }
        if name == RAW {
            return visitor.visit_map(RawMap { de: self, next: 0 });
        }
        match &self.node.value {
            Value::Map(entries) => visitor
                .visit_map(NodeMap::new(self, entries, Some(fields)))
                .map_err(|e| e.at(self.node.loc)),
            _ => Err(self.expected("a mapping")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match &self.node.value {
            Value::Scalar(text, _) => visitor
                .visit_enum(text.as_str().into_deserializer())
                .map_err(|e: Error| e.at(self.node.loc)),
            Value::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                visitor
                    .visit_enum(EnumDe {
                        key: self.child(key),
                        value: self.child(value),
                    })
                    .map_err(|e| e.at(self.node.loc))
            }
            _ => Err(self.expected("a name")),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// The deserializer handed to [`Checked`]: any failure is recorded and
/// replaced by the [`RECORDED`] marker, which `Checked` turns into "absent".
struct Recording<'a>(NodeDe<'a>);

impl Recording<'_> {
    fn keep<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|e| {
            if e.message != RECORDED {
                let loc = if e.loc.is_known() {
                    e.loc
                } else {
                    self.0.node.loc
                };
                self.0.record(loc, e.message);
            }
            Error::custom(RECORDED)
        })
    }
}

macro_rules! recording_forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Error> {
            let inner = self.0;
            self.keep(inner.$method($($arg,)* visitor))
        }
    )*};
}

impl<'de> Deserializer<'de> for Recording<'_> {
    type Error = Error;

    recording_forward! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }
}

struct NodeSeq<'a, I> {
    de: NodeDe<'a>,
    items: I,
    len: usize,
}

impl<'a, I: ExactSizeIterator<Item = &'a Node>> NodeSeq<'a, I> {
    fn new(de: NodeDe<'a>, items: I) -> Self {
        let len = items.len();
        NodeSeq { de, items, len }
    }
}

impl<'de, 'a, I: Iterator<Item = &'a Node>> SeqAccess<'de> for NodeSeq<'a, I> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            None => Ok(None),
            Some(node) => {
                self.len = self.len.saturating_sub(1);
                seed.deserialize(self.de.child(node))
                    .map(Some)
                    .map_err(|e| e.at(node.loc))
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.len)
    }
}

/// A mapping; for structs (`fields` given) unknown and repeated keys are
/// recorded and skipped rather than ending the decode.
struct NodeMap<'a> {
    de: NodeDe<'a>,
    entries: &'a [(Node, Node)],
    fields: Option<&'static [&'static str]>,
    seen: HashMap<&'a str, Loc>,
    pos: usize,
    value: Option<&'a Node>,
}

impl<'a> NodeMap<'a> {
    fn new(
        de: NodeDe<'a>,
        entries: &'a [(Node, Node)],
        fields: Option<&'static [&'static str]>,
    ) -> Self {
        NodeMap {
            de,
            entries,
            fields,
            seen: HashMap::new(),
            pos: 0,
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for NodeMap<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        while let Some((key, value)) = self.entries.get(self.pos) {
            self.pos += 1;
            let Some(name) = key.as_str() else {
                self.de.record(
                    key.loc,
                    format!("a key must be a string, found {}", describe(key)),
                );
                continue;
            };
            if let Some(first) = self.seen.get(name) {
                self.de.record(
                    key.loc,
                    format!("duplicate key `{name}` (first at {first})"),
                );
                continue;
            }
            self.seen.insert(name, key.loc);
            if let Some(fields) = self.fields
                && !fields.contains(&name)
            {
                let mut message = format!("unknown field `{name}`");
                match crate::suggest::closest(name, fields.iter().copied()) {
                    Some(best) => message.push_str(&format!(", did you mean `{best}`?")),
                    None => message.push_str(&format!(", expected one of {}", quoted_list(fields))),
                }
                self.de.record(key.loc, message);
                continue;
            }
            self.value = Some(value);
            return seed
                .deserialize(self.de.child(key))
                .map(Some)
                .map_err(|e| e.at(key.loc));
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some(value) = self.value.take() else {
            return Err(Error::custom("value requested before its key"));
        };
        seed.deserialize(self.de.child(value))
            .map_err(|e| e.at(value.loc))
    }
}

struct EnumDe<'a> {
    key: NodeDe<'a>,
    value: NodeDe<'a>,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumDe<'a> {
    type Error = Error;
    type Variant = NodeDe<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, NodeDe<'a>), Error> {
        let variant = seed.deserialize(self.key)?;
        Ok((variant, self.value))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDe<'_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_struct("", fields, visitor)
    }
}

/// Feeds `line`, `col` and `value` to [`Spanned`]'s visitor.
struct SpannedMap<'a> {
    de: NodeDe<'a>,
    next: u8,
}

impl<'de> MapAccess<'de> for SpannedMap<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let key = match self.next {
            0 => "line",
            1 => "col",
            2 => "value",
            _ => return Ok(None),
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let step = self.next;
        self.next += 1;
        let loc = self.de.node.loc;
        match step {
            0 => seed.deserialize(loc.line.into_deserializer()),
            1 => seed.deserialize(loc.col.into_deserializer()),
            _ => seed.deserialize(self.de),
        }
    }
}

/// Feeds a node's parts to [`Node`]'s own visitor, recursively.
struct RawMap<'a> {
    de: NodeDe<'a>,
    next: u8,
}

impl<'de> MapAccess<'de> for RawMap<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let key = match (self.next, &self.de.node.value) {
            (0, _) => "line",
            (1, _) => "col",
            (2, Value::Null) => "null",
            (2, Value::Scalar(_, Style::Plain)) => "plain",
            (2, Value::Scalar(_, Style::Quoted)) => "quoted",
            (2, Value::Seq(_)) => "seq",
            (2, Value::Map(_)) => "map",
            _ => return Ok(None),
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let step = self.next;
        self.next += 1;
        let node = self.de.node;
        match (step, &node.value) {
            (0, _) => seed.deserialize(node.loc.line.into_deserializer()),
            (1, _) => seed.deserialize(node.loc.col.into_deserializer()),
            (_, Value::Null) => seed.deserialize(().into_deserializer()),
            (_, Value::Scalar(text, _)) => seed.deserialize(text.as_str().into_deserializer()),
            (_, Value::Seq(items)) => seed.deserialize(SeqOf(self.de, items)),
            (_, Value::Map(entries)) => seed.deserialize(PairsOf(self.de, entries)),
        }
    }
}

/// A list of raw nodes, as a deserializer.
struct SeqOf<'a>(NodeDe<'a>, &'a [Node]);

impl<'de> Deserializer<'de> for SeqOf<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(NodeSeq::new(self.0, self.1.iter()))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// A mapping's entries as a list of `[key, value]` pairs, as a deserializer.
struct PairsOf<'a>(NodeDe<'a>, &'a [(Node, Node)]);

impl<'de> Deserializer<'de> for PairsOf<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        struct Pairs<'a>(NodeDe<'a>, std::slice::Iter<'a, (Node, Node)>);
        impl<'de> SeqAccess<'de> for Pairs<'_> {
            type Error = Error;
            fn next_element_seed<T: DeserializeSeed<'de>>(
                &mut self,
                seed: T,
            ) -> Result<Option<T::Value>, Error> {
                match self.1.next() {
                    None => Ok(None),
                    Some((k, v)) => seed.deserialize(PairOf(self.0, k, v)).map(Some),
                }
            }
        }
        visitor.visit_seq(Pairs(self.0, self.1.iter()))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct PairOf<'a>(NodeDe<'a>, &'a Node, &'a Node);

impl<'de> Deserializer<'de> for PairOf<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(NodeSeq::new(self.0, [self.1, self.2].into_iter()))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a YAML value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut loc = Loc::UNKNOWN;
                let mut value = Value::Null;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "line" => loc.line = map.next_value()?,
                        "col" => loc.col = map.next_value()?,
                        "null" => {
                            map.next_value::<()>()?;
                            value = Value::Null;
                        }
                        "plain" => value = Value::Scalar(map.next_value()?, Style::Plain),
                        "quoted" => value = Value::Scalar(map.next_value()?, Style::Quoted),
                        "seq" => value = Value::Seq(map.next_value()?),
                        "map" => value = Value::Map(map.next_value()?),
                        other => return Err(de::Error::unknown_field(other, &[])),
                    }
                }
                Ok(Node { loc, value })
            }
        }
        deserializer.deserialize_struct(
            RAW,
            &["line", "col", "null", "plain", "quoted", "seq", "map"],
            RawVisitor,
        )
    }
}

/// A value and the location it was written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    /// Where the value starts in the text.
    pub loc: Loc,
    /// The value.
    pub value: T,
}

impl<T> Spanned<T> {
    /// A value with no place in the text.
    pub fn synthetic(value: T) -> Self {
        Spanned {
            loc: Loc::UNKNOWN,
            value,
        }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpannedVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a located value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
                let mut loc = Loc::UNKNOWN;
                let mut value = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "line" => loc.line = map.next_value()?,
                        "col" => loc.col = map.next_value()?,
                        _ => value = Some(map.next_value()?),
                    }
                }
                value
                    .map(|value| Spanned { loc, value })
                    .ok_or_else(|| de::Error::missing_field("value"))
            }
        }
        deserializer.deserialize_struct(
            SPANNED,
            &["line", "col", "value"],
            SpannedVisitor(std::marker::PhantomData),
        )
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// A value whose decoding problem was recorded instead of failing its
/// parent; `None` when it could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked<T>(pub Option<T>);

impl<T> Default for Checked<T> {
    /// Absent: for a field whose absence is reported by its reader.
    fn default() -> Self {
        Checked(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CheckedVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for CheckedVisitor<T> {
            type Value = Checked<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Checked<T>, D::Error> {
                match T::deserialize(deserializer) {
                    Ok(v) => Ok(Checked(Some(v))),
                    Err(e) if e.to_string() == RECORDED => Ok(Checked(None)),
                    Err(e) => Err(e),
                }
            }
        }
        deserializer.deserialize_newtype_struct(CHECKED, CheckedVisitor(std::marker::PhantomData))
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Checked<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

impl schemars::JsonSchema for Node {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AnyValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        id: Spanned<String>,
        count: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        items: Vec<Checked<Item>>,
        raw: Option<Node>,
    }

    #[test]
    fn every_bad_item_is_reported_and_good_ones_kept() {
        let text = "items:\n  - id: a\n    count: x\n  - id: b\n    cuont: 2\n    extra: 1\n  - id: c\nraw: {k: [1, 'two']}\n";
        let (doc, problems) = decode::<Doc>(&parse(text).unwrap());
        let doc = doc.unwrap();
        let messages: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.loc, p.message))
            .collect();
        assert_eq!(messages.len(), 3, "{messages:#?}");
        assert!(
            messages[0].starts_with("3:12: expected an integer"),
            "{messages:#?}"
        );
        assert_eq!(
            messages[1],
            "5:5: unknown field `cuont`, did you mean `count`?"
        );
        assert!(
            messages[2].starts_with("6:5: unknown field `extra`"),
            "{messages:#?}"
        );
        assert!(doc.items[0].0.is_none());
        assert_eq!(
            doc.items[1].0.as_ref().unwrap().id.loc,
            Loc { line: 4, col: 9 }
        );
        assert_eq!(doc.items[2].0.as_ref().unwrap().id.value, "c");
        let raw = doc.raw.unwrap();
        assert_eq!(raw.get("k").unwrap().loc, Loc { line: 8, col: 10 });
    }

    #[test]
    fn missing_field_points_at_its_mapping() {
        let (_, problems) = decode::<Item>(&parse("\n  count: 3\n").unwrap());
        assert_eq!(problems[0].message, "missing field `id`");
        assert_eq!(problems[0].loc, Loc { line: 2, col: 3 });
    }
}
