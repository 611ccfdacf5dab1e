//! The runbook language: parse, validate, resolve parameters, plan.
//!
//! Two phases, kept apart: [`spec`] is what the file says (serde types, the
//! JSON Schema's source); [`Runbook`] is what lifeboat runs, built by
//! [`load`] only when every check passed, with parameters substituted,
//! defaults applied, `with` blocks typed and `needs` turned into indices.
//! Nothing here knows of tokio or AWS: `lifeboat validate` works offline.

pub mod children;
pub mod interp;
pub mod plan;
pub mod schema;
pub mod spec;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalogue::{ActionInput, ActionKind, ControlPlane, Service};
use crate::diag::{Diagnostic, Diagnostics};
use crate::duration::HumanDuration;
use crate::yaml::{self, Loc, Node, Style, Value};
use interp::{Replacement, RuntimeRef};
pub use spec::{
    AssumeRole, DrillPlacement, OnFailure, ParamType, RecoveryPoint, Regions, Strategy, Targets,
    When,
};

/// The way a runbook is run; decides which steps take part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Unplanned: the primary region is failing.
    Failover,
    /// Planned: the primary is still up (drain writes, zero lag, then move).
    Switchover,
    /// Rehearsal on isolated copies; production is never changed.
    Drill,
    /// After a failover, the failed region back: the old primary fenced
    /// (its app tier stopped, its records drained, its database isolated)
    /// so that two primaries never take writes. Only `when: fence` steps
    /// run.
    Fence,
    /// After a failover, both regions up: the protection rebuilt the other
    /// way (a replica of the new primary in the old region, copies), so
    /// the binding can be re-armed for the new topology. Only `when:
    /// reprotect` steps run.
    Reprotect,
}

impl Mode {
    /// The name as written in runbooks.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Failover => "failover",
            Mode::Switchover => "switchover",
            Mode::Drill => "drill",
            Mode::Fence => "fence",
            Mode::Reprotect => "reprotect",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parameter's value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// Text.
    String(String),
    /// A whole number.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A duration.
    Duration(HumanDuration),
    /// A list of strings.
    List(Vec<String>),
}

impl ParamValue {
    /// Parse a command-line value (`--param k=v`) as `ty`; lists are comma-separated.
    pub fn parse(ty: ParamType, text: &str) -> Result<ParamValue, String> {
        match ty {
            ParamType::String => Ok(ParamValue::String(text.to_string())),
            ParamType::Int => text
                .trim()
                .parse()
                .map(ParamValue::Int)
                .map_err(|_| format!("expected an integer, found `{text}`")),
            ParamType::Bool => match text.trim() {
                "true" => Ok(ParamValue::Bool(true)),
                "false" => Ok(ParamValue::Bool(false)),
                _ => Err(format!("expected true or false, found `{text}`")),
            },
            ParamType::Duration => text
                .parse()
                .map(ParamValue::Duration)
                .map_err(|e: crate::duration::DurationError| e.to_string()),
            ParamType::List => Ok(ParamValue::List(
                text.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            )),
        }
    }

    fn from_node(ty: ParamType, node: &Node) -> Result<ParamValue, String> {
        match (&node.value, ty) {
            (Value::Scalar(text, _), ParamType::List) => {
                Err(format!("expected a list, found `{text}`"))
            }
            (Value::Scalar(text, style), _) => {
                if ty != ParamType::String && *style == Style::Quoted && ty != ParamType::Duration {
                    return Err(format!(
                        "expected {}, found the quoted string `{text}`",
                        type_name(ty)
                    ));
                }
                ParamValue::parse(ty, text)
            }
            (Value::Seq(items), ParamType::List) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| "list items must be strings".to_string())
                })
                .collect::<Result<_, _>>()
                .map(ParamValue::List),
            (Value::Null, _) => Err("a default cannot be null; leave `default` out instead".into()),
            (_, _) => Err(format!("expected {}, found {}", type_name(ty), node.kind())),
        }
    }

    fn replacement(&self) -> Replacement {
        match self {
            ParamValue::String(s) => Replacement::Scalar(s.clone()),
            ParamValue::Int(n) => Replacement::Scalar(n.to_string()),
            ParamValue::Bool(b) => Replacement::Scalar(b.to_string()),
            ParamValue::Duration(d) => Replacement::Scalar(d.to_string()),
            ParamValue::List(items) => Replacement::List(items.clone()),
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::String(s) => f.write_str(s),
            ParamValue::Int(n) => write!(f, "{n}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Duration(d) => write!(f, "{d}"),
            ParamValue::List(items) => f.write_str(&items.join(",")),
        }
    }
}

fn type_name(ty: ParamType) -> &'static str {
    match ty {
        ParamType::String => "a string",
        ParamType::Int => "an integer",
        ParamType::Bool => "true or false",
        ParamType::Duration => "a duration",
        ParamType::List => "a list",
    }
}

/// A declared parameter and the value it took.
#[derive(Debug, Clone, Serialize)]
pub struct Param {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: ParamType,
    /// What it is for.
    pub description: Option<String>,
    /// Whether the value must never be printed.
    pub secret: bool,
    /// The value: given, or the default; `None` only when loading for validation.
    #[serde(skip)]
    pub value: Option<ParamValue>,
}

impl Param {
    /// The value as it may be shown to a human (secrets redacted).
    pub fn shown(&self) -> String {
        match (&self.value, self.secret) {
            (None, _) => "(not set)".to_string(),
            (Some(_), true) => crate::REDACTED.to_string(),
            (Some(v), false) => v.to_string(),
        }
    }
}

/// How to treat parameters that have neither a default nor a given value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingParams {
    /// Validate the structure with a typed placeholder.
    Placeholder,
    /// Refuse: the runbook is about to be planned or run.
    Refuse,
}

/// A step's resolved retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retry {
    /// Attempts in all, at least 1.
    pub attempts: u32,
    /// Wait before the second attempt, in milliseconds.
    #[serde(rename = "backoff_ms", serialize_with = "millis")]
    pub backoff: Duration,
    /// Longest wait between attempts, in milliseconds.
    #[serde(rename = "max_backoff_ms", serialize_with = "millis")]
    pub max_backoff: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An action taken on a step's behalf (its rollback or fallback), resolved.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The action.
    pub action: ActionKind,
    /// Its typed inputs.
    pub input: ActionInput,
    /// The `with` block as written (parameters substituted), for run-time references.
    pub with: Node,
    /// Region it acts in.
    pub region: Option<String>,
    /// Deadline of the whole step, every attempt included.
    pub timeout: Duration,
    /// Retry policy.
    pub retry: Retry,
}

/// A validated step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its id.
    pub id: String,
    /// Where it starts in the file.
    pub loc: Loc,
    /// The action.
    pub action: ActionKind,
    /// Typed inputs.
    pub input: ActionInput,
    /// The `with` block as written (parameters substituted), for run-time references.
    pub with: Node,
    /// What the step is for.
    pub description: Option<String>,
    /// Region it acts in; `None` for actions that call no AWS service.
    pub region: Option<String>,
    /// Indices of the steps it needs.
    pub needs: Vec<usize>,
    /// Deadline of the whole step, every attempt included.
    pub timeout: Duration,
    /// Retry policy.
    pub retry: Retry,
    /// What a failure does to the run.
    pub on_failure: OnFailure,
    /// Modes it runs in.
    pub when: Vec<Mode>,
    /// Whether its success marks service restored.
    pub restores_service: bool,
    /// Its compensation, run when the run rolls back.
    pub rollback: Option<Box<Invocation>>,
    /// Taken when its action fails after its retries.
    pub fallback: Option<Box<Invocation>>,
    /// Safe to re-run blindly after an interrupted attempt.
    pub repeatable: bool,
    /// Role to assume for it (its own or the runbook's).
    pub assume_role: Option<AssumeRole>,
}

impl Step {
    /// Whether the step takes part in a run of this mode.
    pub fn runs_in(&self, mode: Mode) -> bool {
        self.when.contains(&mode)
    }

    /// Its action, its rollback's and its fallback's.
    pub fn actions(&self) -> impl Iterator<Item = ActionKind> + '_ {
        std::iter::once(self.action)
            .chain(self.rollback.iter().map(|r| r.action))
            .chain(self.fallback.iter().map(|f| f.action))
    }

    /// Worst-case time the step can take: its deadline, which covers every attempt.
    pub fn budget(&self) -> Duration {
        self.timeout
    }
}

/// A validated runbook, ready to plan and run.
#[derive(Debug, Clone)]
pub struct Runbook {
    /// Its name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// The strategy it implements.
    pub strategy: Strategy,
    /// Parameters in name order.
    pub params: Vec<Param>,
    /// RTO / RPO targets.
    pub targets: Targets,
    /// Region failed away from and recovered into.
    pub regions: Option<Regions>,
    /// Where the recovery point comes from.
    pub recovery_point: Option<RecoveryPoint>,
    /// Where a drill puts its copies.
    pub drill: DrillPlacement,
    /// The steps, in file order; `needs` index into this list.
    pub steps: Vec<Step>,
}

impl Runbook {
    /// The index of the step with this id.
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// Every action the runbook names, rollbacks and fallbacks included.
    pub fn actions(&self) -> impl Iterator<Item = ActionKind> + '_ {
        self.steps.iter().flat_map(Step::actions)
    }

    /// The actions a run in `mode` may take.
    pub fn actions_in(&self, mode: Mode) -> impl Iterator<Item = ActionKind> + '_ {
        self.steps
            .iter()
            .filter(move |s| s.runs_in(mode))
            .flat_map(Step::actions)
    }

    /// Values of secret parameters, to be redacted wherever text is printed.
    pub fn secrets(&self) -> Vec<String> {
        self.params
            .iter()
            .filter(|p| p.secret)
            .filter_map(|p| p.value.as_ref().map(|v| v.to_string()))
            .filter(|v| !v.is_empty())
            .collect()
    }
}

/// Why a run of `runbook` in `mode` would do nothing, for the modes that
/// run only the steps naming them (fence, reprotect).
pub fn nothing_to_do(runbook: &Runbook, mode: Mode) -> Option<String> {
    let (word, what) = match mode {
        Mode::Fence => ("fence", "there is nothing to fence with"),
        Mode::Reprotect => ("reprotect", "there is nothing to reprotect with"),
        _ => return None,
    };
    (!runbook.steps.iter().any(|s| s.runs_in(mode))).then(|| {
        format!(
            "runbook `{}` has no `when: {word}` step: {what}",
            runbook.name
        )
    })
}

/// Every region a run of `runbook` may act in: its `regions` and each
/// step's (fallback's, rollback's) own.
pub fn regions_of(runbook: &Runbook) -> std::collections::BTreeSet<String> {
    let mut all = std::collections::BTreeSet::new();
    if let Some(r) = &runbook.regions {
        all.insert(r.from.clone());
        all.extend(r.recovery().map(str::to_string));
    }
    for step in &runbook.steps {
        all.extend(step.region.clone());
        for inv in [&step.fallback, &step.rollback].into_iter().flatten() {
            all.extend(inv.region.clone());
        }
    }
    all
}

/// Every distinct role the runbook's steps act as (the accounts besides the
/// caller's own that a run, and so a drill's teardown, reaches).
pub fn roles_of(runbook: &Runbook) -> Vec<AssumeRole> {
    let mut all: Vec<AssumeRole> = Vec::new();
    for role in runbook.steps.iter().filter_map(|s| s.assume_role.as_ref()) {
        if !all.contains(role) {
            all.push(role.clone());
        }
    }
    all
}

/// A runbook that loaded, and what is worth a warning.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The runbook.
    pub runbook: Runbook,
    /// Warnings (never errors).
    pub warnings: Vec<Diagnostic>,
}

/// Parse, check and resolve a runbook.
///
/// `file` names the source in messages; `params` are `--param` values as
/// `(name, text)`. The texts of child runbooks travel in `text` (see
/// [`children`]). Every problem is reported at once, a child's in its own
/// file; on any error nothing is returned but the list.
pub fn load(
    file: &str,
    text: &str,
    params: &[(String, String)],
    missing: MissingParams,
) -> Result<Loaded, Vec<Diagnostic>> {
    let (own, children) = children::unbundle(text);
    let given: Vec<Given<'_>> = params
        .iter()
        .map(|(name, text)| Given {
            name,
            value: GivenValue::Text(text),
            loc: Loc::UNKNOWN,
        })
        .collect();
    let mut diags = Diagnostics::new(file);
    let scope = Scope::Top {
        file,
        children: &children,
    };
    let (runbook, problems) = read_document(own, &given, missing, &scope, &mut diags);
    for (loc, message) in problems {
        diags.error(loc, None, message);
    }
    if diags.has_errors() {
        return Err(diags.into_sorted());
    }
    match runbook {
        Some(runbook) => Ok(Loaded {
            runbook,
            warnings: diags.into_sorted(),
        }),
        None => {
            diags.error(Loc::UNKNOWN, None, "the runbook could not be read");
            Err(diags.into_sorted())
        }
    }
}

/// A parameter's value as given: on the command line, or in the `params`
/// of a step that runs a child runbook.
struct Given<'a> {
    name: &'a str,
    value: GivenValue<'a>,
    /// Where it was written (unknown on the command line).
    loc: Loc,
}

enum GivenValue<'a> {
    /// `--param name=text`.
    Text(&'a str),
    /// `params: { name: value }` of a parent's step.
    Node(&'a Node),
}

/// What a runbook is read as.
enum Scope<'a> {
    /// Run on its own: `file` names it, and its children's texts are in
    /// `children`, by reference.
    Top {
        file: &'a str,
        children: &'a BTreeMap<String, String>,
    },
    /// A child, for a parent's step: it recovers between the parent's
    /// regions and acts as the parent's role unless it says otherwise.
    Child {
        /// The file that names it, for messages.
        child: &'a str,
        regions: Option<&'a Regions>,
        role: Option<&'a AssumeRole>,
    },
}

/// Parse, check and resolve one runbook's own text. Problems with the
/// values given to its parameters are returned rather than reported: they
/// belong to whoever gave them (the command line, or a parent's step).
fn read_document(
    text: &str,
    given: &[Given<'_>],
    missing: MissingParams,
    scope: &Scope<'_>,
    diags: &mut Diagnostics,
) -> (Option<Runbook>, Vec<(Loc, String)>) {
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            diags.error(e.loc, None, e.message);
            return (None, Vec::new());
        }
    };
    if !matches!(root.value, Value::Map(_)) {
        diags.error(
            root.loc,
            None,
            format!(
                "a runbook is a mapping with `name`, `strategy` and `steps`, found {}",
                root.kind()
            ),
        );
        return (None, Vec::new());
    }
    let outline = Outline::of(&root);

    // Parameters first: everything else is read after they are substituted.
    let empty = Node::synthetic(Value::Map(Vec::new()));
    let params_node = root.get("params").unwrap_or(&empty);
    let (declared, problems) = yaml::decode::<
        BTreeMap<String, yaml::Checked<yaml::Spanned<spec::ParamSpec>>>,
    >(params_node);
    for p in problems {
        diags.error(p.loc, None, p.message);
    }
    let (params, given_problems) =
        resolve_params(declared.unwrap_or_default(), given, missing, scope, diags);
    let replacements: BTreeMap<String, Replacement> = params
        .iter()
        .map(|p| {
            let r = match &p.value {
                Some(v) => v.replacement(),
                None => placeholder(p),
            };
            (p.name.clone(), r)
        })
        .collect();

    let mut resolved = root.clone();
    if let Value::Map(entries) = &mut resolved.value {
        let mut problems = Vec::new();
        for (key, value) in entries.iter_mut() {
            if key.as_str() != Some("params") {
                interp::substitute(value, &replacements, &mut problems);
            }
        }
        for p in problems {
            let step = outline.step_at(p.loc);
            diags.error(p.loc, step, p.message);
        }
    }

    // Required fields that are absent are reported here, and the rest of
    // the runbook is still checked: one missing field hides nothing else.
    for key in spec::REQUIRED {
        if root.get(key).is_none() {
            diags.error(root.loc, None, format!("missing field `{key}`"));
        }
    }
    let (spec, problems) = yaml::decode::<spec::RunbookSpec>(&resolved);
    for p in problems {
        // Parameter problems were reported above from the same node.
        if outline.in_params(p.loc) {
            continue;
        }
        let step = outline.step_at(p.loc);
        diags.error(p.loc, step, p.message);
    }
    let Some(spec) = spec else {
        return (None, given_problems);
    };
    (check(spec, params, &outline, scope, diags), given_problems)
}

/// Where the steps and the parameters are in the raw document, to name the
/// step a problem belongs to and to know ids of steps that failed to decode.
struct Outline {
    /// (start of the step, its id as written) in file order.
    steps: Vec<(Loc, Option<String>)>,
    /// The keys each step is written with, and where (as `steps`).
    keys: Vec<Vec<(String, Loc)>>,
    /// Location just after the steps list, if known.
    steps_end: Option<Loc>,
    params: Option<(Loc, Option<Loc>)>,
    /// Whether the document has a `steps` key at all.
    has_steps: bool,
}

impl Outline {
    fn of(root: &Node) -> Outline {
        let mut steps = Vec::new();
        let mut keys = Vec::new();
        let mut steps_end = None;
        let mut params = None;
        let has_steps = root.get("steps").is_some();
        if let Value::Map(entries) = &root.value {
            for (i, (key, value)) in entries.iter().enumerate() {
                let next = entries.get(i + 1).map(|(k, _)| k.loc);
                match key.as_str() {
                    Some("steps") => {
                        if let Value::Seq(items) = &value.value {
                            steps = items
                                .iter()
                                .map(|item| {
                                    (
                                        item.loc,
                                        item.get("id").and_then(Node::as_str).map(str::to_string),
                                    )
                                })
                                .collect();
                            keys = items
                                .iter()
                                .map(|item| match &item.value {
                                    Value::Map(entries) => entries
                                        .iter()
                                        .filter_map(|(k, _)| {
                                            k.as_str().map(|name| (name.to_string(), k.loc))
                                        })
                                        .collect(),
                                    _ => Vec::new(),
                                })
                                .collect();
                        }
                        steps_end = next;
                    }
                    Some("params") => params = Some((key.loc, next)),
                    _ => {}
                }
            }
        }
        Outline {
            steps,
            keys,
            steps_end,
            params,
            has_steps,
        }
    }

    fn step_at(&self, loc: Loc) -> Option<&str> {
        if !loc.is_known() || self.steps_end.is_some_and(|end| loc >= end) {
            return None;
        }
        let idx = self.steps.partition_point(|(start, _)| *start <= loc);
        idx.checked_sub(1).and_then(|i| self.steps[i].1.as_deref())
    }

    /// The keys of the step that starts at or before `loc`.
    fn keys_at(&self, loc: Loc) -> &[(String, Loc)] {
        let idx = self.steps.partition_point(|(start, _)| *start <= loc);
        idx.checked_sub(1)
            .and_then(|i| self.keys.get(i))
            .map_or(&[], Vec::as_slice)
    }

    fn in_params(&self, loc: Loc) -> bool {
        self.params
            .is_some_and(|(start, end)| loc > start && end.is_none_or(|end| loc < end))
    }

    fn has_step(&self, id: &str) -> bool {
        self.steps.iter().any(|(_, s)| s.as_deref() == Some(id))
    }
}

fn placeholder(param: &Param) -> Replacement {
    match param.ty {
        ParamType::String => Replacement::Scalar(format!("${{{}}}", param.name)),
        ParamType::Int => Replacement::Scalar("0".into()),
        ParamType::Bool => Replacement::Scalar("false".into()),
        ParamType::Duration => Replacement::Scalar("1s".into()),
        ParamType::List => Replacement::List(vec![format!("${{{}}}", param.name)]),
    }
}

/// The declared parameters with their values: given, else defaults.
/// Problems with the declarations are reported; problems with what was
/// given are returned, worded for where it was given.
fn resolve_params(
    declared: BTreeMap<String, yaml::Checked<yaml::Spanned<spec::ParamSpec>>>,
    given: &[Given<'_>],
    missing: MissingParams,
    scope: &Scope<'_>,
    diags: &mut Diagnostics,
) -> (Vec<Param>, Vec<(Loc, String)>) {
    let child = match scope {
        Scope::Top { .. } => None,
        Scope::Child { child, .. } => Some(*child),
    };
    let label = |name: &str| match child {
        None => format!("--param {name}"),
        Some(_) => format!("`params.{name}`"),
    };
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (name, spec) in &declared {
        let Some(spec) = &spec.0 else { continue };
        let loc = spec.loc;
        if !is_identifier(name) {
            diags.error(loc, None, format!("parameter name `{name}` must be letters, digits and `_`, not starting with a digit"));
        }
        if matches!(name.as_str(), "steps" | "run") {
            diags.error(
                loc,
                None,
                format!("`{name}` is reserved for run-time references"),
            );
        }
        let default = match &spec.default {
            None => None,
            Some(node) => match ParamValue::from_node(spec.ty, node) {
                Ok(v) => Some(v),
                Err(message) => {
                    diags.error(
                        node.loc,
                        None,
                        format!("default of parameter `{name}`: {message}"),
                    );
                    None
                }
            },
        };
        let mut value = default;
        for g in given.iter().filter(|g| g.name == name) {
            let parsed = match g.value {
                GivenValue::Text(text) => ParamValue::parse(spec.ty, text),
                GivenValue::Node(node) => ParamValue::from_node(spec.ty, node),
            };
            match parsed {
                Ok(v) => value = Some(v),
                Err(message) => problems.push((g.loc, format!("{}: {message}", label(name)))),
            }
        }
        if value.is_none() && spec.default.is_none() {
            match child {
                // A parent must give its child every parameter, even when
                // the parent itself is only being validated.
                Some(child) => problems.push((
                    Loc::UNKNOWN,
                    format!("the child runbook `{child}` needs its parameter `{name}` (it has no default): set it in `params`"),
                )),
                None if missing == MissingParams::Refuse => diags.error(
                    loc,
                    None,
                    format!("parameter `{name}` has no default and no value; pass --param {name}=..."),
                ),
                None => {}
            }
        }
        out.push(Param {
            name: name.clone(),
            ty: spec.ty,
            description: spec.description.clone(),
            secret: spec.secret,
            value,
        });
    }
    for g in given {
        if !declared.contains_key(g.name) {
            let who = child.map_or("the runbook".to_string(), |c| format!("`{c}`"));
            let mut message = format!(
                "{}: {who} declares no parameter `{}`",
                label(g.name),
                g.name
            );
            if let Some(best) = crate::suggest::closest(g.name, declared.keys().map(String::as_str))
            {
                message.push_str(&format!(", did you mean `{best}`?"));
            }
            problems.push((g.loc, message));
        }
    }
    (out, problems)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_step_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && id.len() <= 64
}

/// Whether `region` looks like an AWS region name (`us-east-1`, `ap-southeast-2`, `us-gov-west-1`).
pub fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

fn is_placeholder(text: &str) -> bool {
    text.starts_with("${") && text.ends_with('}')
}

fn retry_of(
    spec: Option<&spec::RetrySpec>,
    action: ActionKind,
    loc: Loc,
    step: &str,
    diags: &mut Diagnostics,
) -> Retry {
    let default = Retry {
        attempts: action.info().default_attempts,
        backoff: Duration::from_secs(2),
        max_backoff: Duration::from_secs(60),
    };
    let Some(spec) = spec else { return default };
    if spec.attempts == 0 {
        diags.error(
            loc,
            Some(step),
            "`retry.attempts` counts the first attempt and must be at least 1",
        );
    }
    let retry = Retry {
        attempts: spec.attempts.max(1),
        backoff: spec.backoff.map_or(default.backoff, HumanDuration::get),
        max_backoff: spec
            .max_backoff
            .map_or(default.max_backoff, HumanDuration::get),
    };
    if retry.max_backoff < retry.backoff {
        diags.error(
            loc,
            Some(step),
            "`retry.max_backoff` is shorter than `retry.backoff`",
        );
    }
    retry
}

fn default_timeout(input: &ActionInput) -> Duration {
    match input {
        ActionInput::Wait(w) => w.duration.get() + Duration::from_secs(60),
        ActionInput::ManualApproval(a) => a.timeout.get() + Duration::from_secs(60),
        ActionInput::Exec(e) if e.timeout.is_some() => {
            e.timeout.map_or(Duration::ZERO, HumanDuration::get) + Duration::from_secs(10)
        }
        other => other.kind().info().default_timeout,
    }
}

/// Region an action acts in: `None` when it calls no AWS service.
fn region_of(
    action: ActionKind,
    written: Option<&yaml::Spanned<String>>,
    fallback: Option<&str>,
    at: Loc,
    step: &str,
    diags: &mut Diagnostics,
) -> Option<String> {
    let info = action.info();
    if info.service == Service::None {
        return None;
    }
    if let ControlPlane::Global { region } = info.control_plane {
        if let Some(r) = written.filter(|r| r.value != region) {
            diags.warning(
                r.loc,
                Some(step),
                format!("`region` is ignored: {} is a global service whose control plane is in {region}", info.service),
            );
        }
        return Some(region.to_string());
    }
    let region = match written
        .map(|r| r.value.clone())
        .or_else(|| fallback.map(str::to_string))
    {
        Some(r) => r,
        None => {
            diags.error(
                at,
                Some(step),
                format!("`{}` acts in a region; set `region` on the step or `regions.to` on the runbook", action),
            );
            return None;
        }
    };
    if !is_region(&region) && !is_placeholder(&region) {
        diags.error(
            written.map_or(at, |r| r.loc),
            Some(step),
            format!("`{region}` is not an AWS region name"),
        );
    }
    Some(region)
}

fn check(
    spec: spec::RunbookSpec,
    params: Vec<Param>,
    outline: &Outline,
    scope: &Scope<'_>,
    diags: &mut Diagnostics,
) -> Option<Runbook> {
    if spec.name.0.as_ref().is_some_and(|n| n.trim().is_empty()) {
        diags.error(Loc::UNKNOWN, None, "`name` is empty");
    }
    let name = spec.name.0.unwrap_or_default();
    let regions = spec.regions.and_then(|r| r.0);
    if let Some(r) = &regions {
        for region in [&r.from, &r.to].into_iter().chain(&r.also) {
            if !is_region(region) && !is_placeholder(region) {
                diags.error(
                    Loc::UNKNOWN,
                    None,
                    format!("`regions`: `{region}` is not an AWS region name"),
                );
            }
        }
        let zonal = matches!(spec.strategy.0, Some(Strategy::MultiAz));
        if r.from == r.to && !is_placeholder(&r.from) && !zonal {
            diags.error(
                Loc::UNKNOWN,
                None,
                format!("`regions.from` and `regions.to` are both `{}`", r.from),
            );
        }
        let mut seen = std::collections::BTreeSet::from([r.to.as_str()]);
        for also in &r.also {
            if is_placeholder(also) {
                continue;
            }
            if *also == r.from {
                diags.error(
                    Loc::UNKNOWN,
                    None,
                    format!("`regions.also` names `{also}`, the region failed away from"),
                );
            } else if !seen.insert(also.as_str()) {
                diags.error(
                    Loc::UNKNOWN,
                    None,
                    format!("`regions.also` names `{also}` twice (or as `regions.to` too)"),
                );
            }
        }
        if zonal && !r.also.is_empty() {
            diags.error(
                Loc::UNKNOWN,
                None,
                "a multi-az runbook recovers within one region: drop `regions.also`",
            );
        }
        if r.from != r.to && zonal {
            diags.error(
                Loc::UNKNOWN,
                None,
                format!(
                    "a multi-az runbook recovers within one region: `regions.from` ({}) and `regions.to` ({}) must be the same",
                    r.from, r.to
                ),
            );
        }
    }
    let declared_role = spec.assume_role.and_then(|r| r.0);
    // A child recovers between its parent's regions and acts as its
    // parent's role, unless it names its own.
    let (regions, runbook_role) = match scope {
        Scope::Top { .. } => (regions, declared_role),
        Scope::Child {
            regions: inherited,
            role,
            ..
        } => (
            regions.or_else(|| inherited.cloned()),
            declared_role.or_else(|| role.cloned()),
        ),
    };
    let spec_has_steps = outline.has_steps;
    let raw_steps: Vec<spec::StepSpec> = spec
        .steps
        .0
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| s.0)
        .collect();
    // (A missing `steps` is reported as such by `load`.)
    if outline.steps.is_empty() && raw_steps.is_empty() && spec_has_steps {
        diags.error(Loc::UNKNOWN, None, "the runbook has no steps");
    }

    // Ids: format and uniqueness.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, s) in raw_steps.iter().enumerate() {
        let id = s.id.value.as_str();
        if !is_step_id(id) {
            diags.error(
                s.id.loc,
                Some(id),
                "a step id is 1 to 64 lowercase letters, digits, `-` or `_`, starting with a letter or digit",
            );
        }
        if let Some(&first) = index.get(id) {
            diags.error(
                s.id.loc,
                Some(id),
                format!("duplicate step id (first at {})", raw_steps[first].id.loc),
            );
        } else {
            index.insert(id, i);
        }
    }

    // Child runbooks first: each takes its step's place in the list, so
    // where every step lands is known before `needs` are resolved.
    let mut unreadable = false;
    let mut blocks: Vec<Option<Runbook>> = Vec::with_capacity(raw_steps.len());
    for s in &raw_steps {
        let id = s.id.value.as_str();
        let block = match (&s.action, &s.runbook) {
            (Some(_), None) => None,
            (Some(_), Some(r)) => {
                diags.error(
                    r.loc,
                    Some(id),
                    "a step takes an `action` or a `runbook`, not both",
                );
                unreadable = true;
                None
            }
            (None, None) => {
                diags.error(
                    s.id.loc,
                    Some(id),
                    "missing field `action` (or `runbook`, to run a child runbook)",
                );
                unreadable = true;
                None
            }
            (None, Some(reference)) => {
                let child = match scope {
                    Scope::Top { file, children } => {
                        let parent = ChildOf {
                            file,
                            children,
                            regions: regions.as_ref(),
                            role: s.assume_role.as_ref().or(runbook_role.as_ref()),
                            keys: outline.keys_at(s.id.loc),
                        };
                        load_child(s, reference, &parent, diags)
                    }
                    Scope::Child { .. } => {
                        diags.error(
                            reference.loc,
                            Some(id),
                            "a child runbook runs no child runbook of its own: children are one level deep",
                        );
                        None
                    }
                };
                unreadable |= child.is_none();
                child
            }
        };
        blocks.push(block);
    }
    // Where each written step starts in the final list, and the steps of
    // each that a step needing it waits for (a child's last steps).
    let mut offsets = Vec::with_capacity(raw_steps.len());
    let mut next = 0usize;
    for (block, s) in blocks.iter().zip(&raw_steps) {
        offsets.push(next);
        next += match block {
            Some(child) => child.steps.len(),
            None if s.runbook.is_some() => 0,
            None => 1,
        };
    }
    let ends = |j: usize| -> Vec<usize> {
        match &blocks[j] {
            Some(child) => last_steps(&child.steps)
                .into_iter()
                .map(|k| offsets[j] + k)
                .collect(),
            None => vec![offsets[j]],
        }
    };

    let default_region = regions.as_ref().map(|r| r.to.as_str());
    let mut steps = Vec::with_capacity(next);
    // For each step of the final list: the written step that ran it as a
    // child runbook's, if it is one.
    let mut origin: Vec<Option<usize>> = Vec::with_capacity(next);
    let mut need_locs: Vec<Vec<Loc>> = Vec::with_capacity(next);
    for (i, s) in raw_steps.iter().enumerate() {
        let id = s.id.value.as_str();
        let mut needs = Vec::new();
        let mut locs = Vec::new();
        let mut named = Vec::new();
        for need in &s.needs {
            match index.get(need.value.as_str()) {
                Some(_) if need.value == id => {
                    diags.error(need.loc, Some(id), format!("dependency cycle: {id} → {id}"));
                }
                Some(&j) => {
                    if named.contains(&j) {
                        diags.warning(
                            need.loc,
                            Some(id),
                            format!("`{}` is listed twice in `needs`", need.value),
                        );
                    } else {
                        named.push(j);
                        for k in ends(j) {
                            needs.push(k);
                            locs.push(need.loc);
                        }
                    }
                }
                None if outline.has_step(&need.value) => {}
                None => {
                    let mut message = format!("`needs` names an unknown step `{}`", need.value);
                    if let Some(best) = crate::suggest::closest(&need.value, index.keys().copied())
                    {
                        message.push_str(&format!(", did you mean `{best}`?"));
                    }
                    diags.error(need.loc, Some(id), message);
                }
            }
        }
        let when = s.when.as_ref().map(|w| modes_of(w, id, diags));
        if let Some(child) = &blocks[i] {
            splice(
                child,
                &ChildStep {
                    id,
                    at: s.id.loc,
                    offset: offsets[i],
                    needs: &needs,
                    when: when.as_deref(),
                },
                &mut steps,
                &mut need_locs,
            );
            origin.resize(steps.len(), Some(i));
            continue;
        }
        let Some(action) = s.action.as_ref().map(|a| a.value) else {
            continue;
        };
        let action_loc = s.action.as_ref().map_or(s.id.loc, |a| a.loc);
        let with = s.with.clone().unwrap_or(Node {
            loc: action_loc,
            value: Value::Map(Vec::new()),
        });
        let (input, problems) = action.decode_with(&with);
        for p in problems {
            diags.error(p.loc, Some(id), p.message);
        }
        let region = region_of(
            action,
            s.region.as_ref(),
            default_region,
            action_loc,
            id,
            diags,
        );
        let when = when.unwrap_or_else(|| vec![Mode::Failover, Mode::Switchover, Mode::Drill]);
        let retry = retry_of(s.retry.as_ref(), action, s.id.loc, id, diags);
        let rollback = s.rollback.as_ref().and_then(|r| {
            invocation(
                r,
                "rollback",
                region.as_deref().or(default_region),
                id,
                diags,
            )
        });
        let fallback = s.fallback.as_ref().and_then(|r| {
            invocation(
                r,
                "fallback",
                region.as_deref().or(default_region),
                id,
                diags,
            )
        });
        if let Some(t) = s.timeout
            && t.get().is_zero()
        {
            diags.error(s.id.loc, Some(id), "`timeout` must be above zero");
        }
        if s.repeatable && action.info().observable {
            diags.warning(
                s.id.loc,
                Some(id),
                format!(
                    "`repeatable` has no effect: `{action}` observes its own effect before acting"
                ),
            );
        }
        if let Some(p) = &s.params {
            diags.error(
                p.loc,
                Some(id),
                "`params` sets a child runbook's parameters: it goes with `runbook`; an action takes its inputs in `with`",
            );
        }
        let Some(input) = input else {
            // Its problems are reported.
            unreadable = true;
            continue;
        };
        need_locs.push(locs);
        origin.push(None);
        steps.push(Step {
            id: id.to_string(),
            loc: s.id.loc,
            action,
            timeout: s
                .timeout
                .map_or_else(|| default_timeout(&input), HumanDuration::get),
            input,
            with,
            description: s.description.clone(),
            region,
            needs,
            retry,
            on_failure: s.on_failure,
            when,
            restores_service: s.restores_service,
            rollback,
            fallback,
            repeatable: s.repeatable,
            assume_role: s.assume_role.clone().or_else(|| runbook_role.clone()),
        });
    }
    if unreadable {
        return None;
    }
    report_cycles(&steps, &need_locs, diags);

    // restores_service: at most one, and downstream of something. The
    // parent's own mark wins over its children's.
    if steps
        .iter()
        .zip(&origin)
        .any(|(s, o)| s.restores_service && o.is_none())
    {
        for (s, o) in steps.iter_mut().zip(&origin) {
            if o.is_some() {
                s.restores_service = false;
            }
        }
    }
    // A diagnostic about a child's step is the parent's step's: the child's
    // own problems are reported in its file.
    let at = |i: usize| origin[i].map_or(steps[i].loc, |r| raw_steps[r].id.loc);
    let restoring: Vec<usize> = (0..steps.len())
        .filter(|&i| steps[i].restores_service)
        .collect();
    if restoring.len() > 1 {
        for &i in &restoring[1..] {
            diags.error(
                at(i),
                Some(&steps[i].id),
                format!(
                    "only one step may be marked `restores_service`; `{}` already is",
                    steps[restoring[0]].id
                ),
            );
        }
    }
    if let Some(&i) = restoring.first()
        && steps[i].needs.is_empty()
        && steps.len() > 1
    {
        diags.error(
            at(i),
            Some(&steps[i].id),
            "`restores_service` step needs no other step, so service would count as restored before any recovery ran",
        );
    }

    // Run-time references to step outputs must point upstream (a child's
    // own were checked in its file).
    let final_index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    for (i, s) in steps
        .iter()
        .enumerate()
        .filter(|(i, _)| origin[*i].is_none())
    {
        let mut refs = interp::references(&s.with);
        for call in s.rollback.iter().chain(s.fallback.iter()) {
            refs.extend(interp::references(&call.with));
        }
        for (loc, name) in refs {
            if let Some(Ok(RuntimeRef::StepOutput { step, .. })) = interp::runtime_ref(&name) {
                match final_index.get(step) {
                    None if index.get(step).is_some_and(|&j| blocks[j].is_some()) => diags.error(
                        loc,
                        Some(&s.id),
                        format!("`${{{name}}}`: `{step}` runs a child runbook, which has no outputs of its own; name one of its steps, `${{steps.{step}.<its step>.outputs.<key>}}`"),
                    ),
                    None => diags.error(loc, Some(&s.id), format!("`${{{name}}}` names an unknown step `{step}`")),
                    Some(&j) if j == i => diags.error(loc, Some(&s.id), format!("`${{{name}}}`: a step cannot use its own outputs")),
                    Some(&j) if !needs_transitively(&steps, i, j) => diags.error(
                        loc,
                        Some(&s.id),
                        format!("`${{{name}}}` uses outputs of `{step}`, which this step does not need (directly or through `needs`)"),
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    // Static stability: in a failover, the failed region's control plane may be down.
    // A failback is always planned, with both regions up; a multi-AZ
    // recovery leaves a zone, and the region's control plane serves it.
    // (A child's steps were checked in its file.)
    let planned = matches!(
        spec.strategy.0,
        Some(Strategy::Failback | Strategy::MultiAz)
    );
    if let Some(r) = regions.as_ref().filter(|_| !planned) {
        for (s, _) in steps
            .iter()
            .zip(&origin)
            .filter(|(s, o)| o.is_none() && s.runs_in(Mode::Failover))
        {
            let info = s.action.info();
            let calls = match info.control_plane {
                ControlPlane::Regional => s.region.as_deref() == Some(r.from.as_str()),
                ControlPlane::Global { region } => region == r.from,
                ControlPlane::None => false,
            };
            if calls {
                let plane = match info.control_plane {
                    ControlPlane::Global { region } => {
                        format!(
                            "the {} control plane, which lives in {region},",
                            info.service
                        )
                    }
                    _ => format!("the {} control plane in {},", info.service, r.from),
                };
                diags.warning(
                    s.loc,
                    Some(&s.id),
                    format!(
                        "`{}` calls {plane} the region this runbook fails away from; it may be down exactly when needed (prefer a data-plane switch, or run this step only in a switchover)",
                        s.action
                    ),
                );
            }
        }
    }

    let children: Vec<(&str, &Runbook)> = raw_steps
        .iter()
        .zip(&blocks)
        .filter_map(|(s, b)| b.as_ref().map(|b| (s.id.value.as_str(), b)))
        .collect();
    let recovery_point = match spec.recovery_point.and_then(|r| r.0) {
        Some(point) => Some(point),
        None => inherit(
            "recovery_point",
            children
                .iter()
                .filter_map(|(id, child)| child_recovery_point(id, child).map(|p| (*id, p))),
            diags,
        ),
    };
    if let Some(RecoveryPoint::RdsSnapshot { step }) = &recovery_point
        && !final_index.contains_key(step.as_str())
    {
        diags.error(
            Loc::UNKNOWN,
            None,
            format!("`recovery_point.step` names an unknown step `{step}`"),
        );
    }
    let drill = match spec.drill.and_then(|d| d.0) {
        Some(d) => {
            check_drill_placement(&d.value, d.loc, diags);
            d.value
        }
        None => inherit(
            "drill",
            children
                .iter()
                .filter(|(_, child)| child.drill != DrillPlacement::default())
                .map(|(id, child)| (*id, child.drill.clone())),
            diags,
        )
        .unwrap_or_default(),
    };
    let mut params = params;
    for (id, child) in &children {
        params.extend(child.params.iter().map(|p| Param {
            name: format!("{id}.{}", p.name),
            ..p.clone()
        }));
    }
    Some(Runbook {
        name,
        description: spec.description,
        strategy: spec.strategy.0?,
        params,
        targets: spec.targets.and_then(|t| t.0).unwrap_or_default(),
        regions,
        recovery_point,
        drill,
        steps,
    })
}

/// When the modes a step's `when` names.
fn modes_of(when: &yaml::Spanned<spec::WhenSpec>, id: &str, diags: &mut Diagnostics) -> Vec<Mode> {
    let list = match &when.value {
        spec::WhenSpec::One(one) => vec![one.to_owned()],
        spec::WhenSpec::Many(many) => many.clone(),
    };
    if list.is_empty() {
        diags.error(when.loc, Some(id), "`when` lists no mode");
    }
    let mut modes = Vec::new();
    for w in list {
        let add: &[Mode] = match w {
            When::Always => &[Mode::Failover, Mode::Switchover, Mode::Drill],
            When::Failover => &[Mode::Failover],
            When::Switchover => &[Mode::Switchover],
            When::Drill => &[Mode::Drill],
            When::Fence => &[Mode::Fence],
            When::Reprotect => &[Mode::Reprotect],
        };
        for m in add {
            if !modes.contains(m) {
                modes.push(*m);
            }
        }
    }
    modes
}

/// What a parent tells the child runbook one of its steps runs.
struct ChildOf<'a> {
    /// The parent's file, beside which the child is.
    file: &'a str,
    /// The children's texts carried with the parent.
    children: &'a BTreeMap<String, String>,
    /// The parent's regions.
    regions: Option<&'a Regions>,
    /// The step's role, else the parent's.
    role: Option<&'a AssumeRole>,
    /// The keys the step is written with.
    keys: &'a [(String, Loc)],
}

/// The keys a step running a child runbook may have: the rest belong on
/// the child's steps.
const CHILD_STEP_KEYS: [&str; 7] = [
    "id",
    "runbook",
    "params",
    "description",
    "needs",
    "when",
    "assume_role",
];

/// Load the child runbook step `s` runs, with the parameters it gives.
/// Problems in the step are the parent's; problems in the child are
/// reported in the child's file, and the step is refused with them.
fn load_child(
    s: &spec::StepSpec,
    reference: &yaml::Spanned<String>,
    parent: &ChildOf<'_>,
    diags: &mut Diagnostics,
) -> Option<Runbook> {
    let id = s.id.value.as_str();
    let mut fine = true;
    for (key, loc) in parent.keys {
        if !CHILD_STEP_KEYS.contains(&key.as_str()) {
            diags.error(
                *loc,
                Some(id),
                format!("`{key}` has no place on a step that runs a child runbook: it belongs on the child's steps"),
            );
            fine = false;
        }
    }
    let Some(text) = parent.children.get(&reference.value) else {
        let why = if children::is_reference(&reference.value) {
            "it is read beside this runbook's file when the runbook is, so name it as written (not through a parameter)"
        } else {
            "a child runbook is named by its path, on one line, without a backquote"
        };
        diags.error(
            reference.loc,
            Some(id),
            format!(
                "the child runbook `{}` is not carried with this runbook: {why}",
                reference.value
            ),
        );
        return None;
    };
    let file = children::resolve(std::path::Path::new(parent.file), &reference.value)
        .display()
        .to_string();

    let mut given = Vec::new();
    match s.params.as_ref().map(|p| (p, &p.value)) {
        None | Some((_, Value::Null)) => {}
        Some((_, Value::Map(entries))) => {
            for (key, value) in entries {
                let Some(name) = key.as_str() else {
                    diags.error(key.loc, Some(id), "`params` keys are parameter names");
                    fine = false;
                    continue;
                };
                if let Some((loc, r)) = interp::references(value)
                    .into_iter()
                    .find(|(_, r)| interp::runtime_ref(r).is_some())
                {
                    diags.error(
                        loc,
                        Some(id),
                        format!("`params.{name}`: `${{{r}}}` is known only at run time, and a child's parameters are set when the runbook loads"),
                    );
                    fine = false;
                    continue;
                }
                given.push(Given {
                    name,
                    value: GivenValue::Node(value),
                    loc: value.loc,
                });
            }
        }
        Some((p, _)) => {
            diags.error(
                p.loc,
                Some(id),
                format!(
                    "`params` is a mapping of the child's parameters, found {}",
                    p.kind()
                ),
            );
            fine = false;
        }
    }

    let mut child_diags = Diagnostics::new(file.clone());
    let scope = Scope::Child {
        child: &reference.value,
        regions: parent.regions,
        role: parent.role,
    };
    let (child, problems) = read_document(
        text,
        &given,
        MissingParams::Refuse,
        &scope,
        &mut child_diags,
    );
    for (loc, message) in problems {
        let loc = if loc.is_known() { loc } else { reference.loc };
        diags.error(loc, Some(id), message);
        fine = false;
    }
    if child_diags.has_errors() {
        diags.error(
            reference.loc,
            Some(id),
            format!(
                "the child runbook `{}` does not load (its problems are reported in {file})",
                reference.value
            ),
        );
        fine = false;
    }
    diags.absorb(child_diags.into_sorted());
    child.filter(|_| fine)
}

/// Where a child's steps go in the parent's list.
struct ChildStep<'a> {
    /// The parent's step id, the prefix of the child's.
    id: &'a str,
    /// Where the step is written.
    at: Loc,
    /// Where the child's first step lands in the parent's list.
    offset: usize,
    /// What the step needs (in the parent's list): what the child's first
    /// steps wait for.
    needs: &'a [usize],
    /// The modes the step names, if it names any: the child's steps run
    /// only in those.
    when: Option<&'a [Mode]>,
}

/// Append the steps of `child` to `steps`, renamed `<step>.<id>` (and
/// the references between them with them), as `at` places them.
fn splice(
    child: &Runbook,
    at: &ChildStep<'_>,
    steps: &mut Vec<Step>,
    need_locs: &mut Vec<Vec<Loc>>,
) {
    let names: HashMap<String, String> = child
        .steps
        .iter()
        .map(|c| (c.id.clone(), format!("{}.{}", at.id, c.id)))
        .collect();
    for c in &child.steps {
        let mut step = c.clone();
        step.id = names[&c.id].clone();
        step.needs = if c.needs.is_empty() {
            at.needs.to_vec()
        } else {
            c.needs.iter().map(|&n| at.offset + n).collect()
        };
        if let Some(when) = at.when {
            step.when.retain(|m| when.contains(m));
        }
        interp::rename_steps(&mut step.with, &names);
        for call in step.rollback.iter_mut().chain(step.fallback.iter_mut()) {
            interp::rename_steps(&mut call.with, &names);
        }
        need_locs.push(vec![at.at; step.needs.len()]);
        steps.push(step);
    }
}

/// The steps no other step needs: the last of a runbook's.
fn last_steps(steps: &[Step]) -> Vec<usize> {
    let needed: HashSet<usize> = steps.iter().flat_map(|s| s.needs.iter().copied()).collect();
    (0..steps.len()).filter(|i| !needed.contains(i)).collect()
}

/// A child's recovery point as its parent's: its steps renamed, its
/// region its own `regions.to`.
fn child_recovery_point(id: &str, child: &Runbook) -> Option<RecoveryPoint> {
    let to = child.regions.as_ref().map(|r| r.to.clone());
    Some(match child.recovery_point.clone()? {
        RecoveryPoint::RdsSnapshot { step } => RecoveryPoint::RdsSnapshot {
            step: format!("{id}.{step}"),
        },
        RecoveryPoint::RdsReplicaLag {
            db_instance,
            region,
        } => RecoveryPoint::RdsReplicaLag {
            db_instance,
            region: region.or(to),
        },
        RecoveryPoint::AuroraGlobalLag { db_cluster, region } => RecoveryPoint::AuroraGlobalLag {
            db_cluster,
            region: region.or(to),
        },
        other @ RecoveryPoint::S3NewestObject { .. } => other,
    })
}

/// What a parent that says nothing of `field` takes from its children:
/// the one child's that says something; several is the parent's to settle.
fn inherit<'a, T: PartialEq>(
    field: &str,
    offered: impl Iterator<Item = (&'a str, T)>,
    diags: &mut Diagnostics,
) -> Option<T> {
    let offered: Vec<(&'a str, T)> = offered.collect();
    let (first, rest) = offered.split_first()?;
    if let Some((other, _)) = rest.iter().find(|(_, v)| *v != first.1) {
        diags.error(
            Loc::UNKNOWN,
            None,
            format!(
                "steps `{}` and `{other}` run child runbooks with different `{field}`s: set the parent's own `{field}`",
                first.0
            ),
        );
        return None;
    }
    offered.into_iter().next().map(|(_, v)| v)
}

/// Ids in `drill:` look like the ids they name (a subnet id where a
/// subnet goes), so a swapped or mistyped one is caught before a drill.
fn check_drill_placement(d: &DrillPlacement, at: Loc, diags: &mut Diagnostics) {
    let lists = [
        ("subnets", "subnet-", &d.subnets),
        ("security_groups", "sg-", &d.security_groups),
        ("db_security_groups", "sg-", &d.db_security_groups),
    ];
    for (field, prefix, ids) in lists {
        for id in ids {
            if !id.starts_with(prefix) && !is_placeholder(id) {
                diags.error(
                    at,
                    None,
                    format!("`drill.{field}`: `{id}` is not an id starting `{prefix}`"),
                );
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for id in ids {
            if !seen.insert(id) {
                diags.error(at, None, format!("`drill.{field}` names `{id}` twice"));
            }
        }
    }
    if d.db_subnet_group
        .as_deref()
        .is_some_and(|g| g.trim().is_empty())
    {
        diags.error(at, None, "`drill.db_subnet_group` is empty");
    }
    let mut seen = std::collections::BTreeSet::new();
    for role in &d.instance_roles {
        // IAM role names: letters, digits and `+=,.@_-`, at most 64; a
        // path before them is `/`-separated.
        let name = role.rsplit('/').next().unwrap_or_default();
        let valid = !name.is_empty()
            && name.len() <= 64
            && role.trim_matches('/') == role
            && role
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c));
        if !valid && !is_placeholder(role) {
            diags.error(
                at,
                None,
                format!(
                    "`drill.instance_roles`: `{role}` is not a role name (e.g. `app-role`, or `service/app-role` with its path; no ARN, no wildcard)"
                ),
            );
        }
        if !seen.insert(role) {
            diags.error(
                at,
                None,
                format!("`drill.instance_roles` names `{role}` twice"),
            );
        }
    }
}

/// Resolve a step's rollback or fallback.
fn invocation(
    call: &yaml::Spanned<spec::ActionCall>,
    role: &str,
    default_region: Option<&str>,
    step: &str,
    diags: &mut Diagnostics,
) -> Option<Box<Invocation>> {
    let spec = &call.value;
    let with = spec.with.clone().unwrap_or(Node {
        loc: spec.action.loc,
        value: Value::Map(Vec::new()),
    });
    let (input, problems) = spec.action.value.decode_with(&with);
    for p in problems {
        diags.error(p.loc, Some(step), format!("{role}: {}", p.message));
    }
    let region = region_of(
        spec.action.value,
        spec.region.as_ref(),
        default_region,
        spec.action.loc,
        step,
        diags,
    );
    let retry = retry_of(
        spec.retry.as_ref(),
        spec.action.value,
        call.loc,
        step,
        diags,
    );
    let input = input?;
    Some(Box::new(Invocation {
        action: spec.action.value,
        timeout: spec
            .timeout
            .map_or_else(|| default_timeout(&input), HumanDuration::get),
        input,
        with,
        region,
        retry,
    }))
}

/// Reports every dependency cycle once, with its whole chain.
fn report_cycles(steps: &[Step], need_locs: &[Vec<Loc>], diags: &mut Diagnostics) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; steps.len()];
    let mut reported = 0usize;
    for start in 0..steps.len() {
        if mark[start] != Mark::New {
            continue;
        }
        // Iterative depth-first search: (step, next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        mark[start] = Mark::Open;
        while let Some(&mut (node, ref mut edge)) = stack.last_mut() {
            if let Some(&next) = steps[node].needs.get(*edge) {
                let edge_index = *edge;
                *edge += 1;
                match mark[next] {
                    Mark::New => {
                        mark[next] = Mark::Open;
                        stack.push((next, 0));
                    }
                    Mark::Open => {
                        if reported < 20 {
                            let pos = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                            // `needs` point backwards in time; print the chain
                            // in execution order: each step runs before the next.
                            let mut cycle: Vec<usize> =
                                stack[pos..].iter().map(|(n, _)| *n).collect();
                            cycle.reverse();
                            // Start from the step written first, so the chain reads the
                            // same whichever step the search entered the cycle by.
                            let first = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
                            cycle.rotate_left(first);
                            cycle.push(cycle[0]);
                            let chain: Vec<&str> =
                                cycle.iter().map(|&n| steps[n].id.as_str()).collect();
                            let loc = need_locs[node]
                                .get(edge_index)
                                .copied()
                                .unwrap_or(steps[node].loc);
                            diags.error(
                                loc,
                                Some(&steps[node].id),
                                format!("dependency cycle: {}", chain.join(" → ")),
                            );
                        }
                        reported += 1;
                    }
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
}

/// Whether step `of` needs step `ancestor`, directly or through other steps.
fn needs_transitively(steps: &[Step], of: usize, ancestor: usize) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![of];
    while let Some(n) = stack.pop() {
        for &m in &steps[n].needs {
            if m == ancestor {
                return true;
            }
            if seen.insert(m) {
                stack.push(m);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests;
