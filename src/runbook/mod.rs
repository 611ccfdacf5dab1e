//! The runbook language: parse, validate, resolve parameters, plan.
//!
//! Two phases, kept apart: [`spec`] is what the file says (serde types, the
//! JSON Schema's source); [`Runbook`] is what lifeboat runs, built by
//! [`load`] only when every check passed, with parameters substituted,
//! defaults applied, `with` blocks typed and `needs` turned into indices.
//! Nothing here knows of tokio or AWS: `lifeboat validate` works offline.

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
/// `(name, text)`. Every problem is reported at once; on any error nothing is
/// returned but the list.
pub fn load(
    file: &str,
    text: &str,
    params: &[(String, String)],
    missing: MissingParams,
) -> Result<Loaded, Vec<Diagnostic>> {
    let mut diags = Diagnostics::new(file);
    let root = match yaml::parse(text) {
        Ok(root) => root,
        Err(e) => {
            diags.error(e.loc, None, e.message);
            return Err(diags.into_sorted());
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
        return Err(diags.into_sorted());
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
    let params = resolve_params(declared.unwrap_or_default(), params, missing, &mut diags);
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
        return Err(diags.into_sorted());
    };
    let runbook = check(spec, params, &outline, &mut diags);
    if diags.has_errors() {
        return Err(diags.into_sorted());
    }
    match runbook {
        Some(runbook) => Ok(Loaded {
            runbook,
            warnings: diags.into_sorted(),
        }),
        None => {
            diags.error(root.loc, None, "the runbook could not be read");
            Err(diags.into_sorted())
        }
    }
}

/// Where the steps and the parameters are in the raw document, to name the
/// step a problem belongs to and to know ids of steps that failed to decode.
struct Outline {
    /// (start of the step, its id as written) in file order.
    steps: Vec<(Loc, Option<String>)>,
    /// Location just after the steps list, if known.
    steps_end: Option<Loc>,
    params: Option<(Loc, Option<Loc>)>,
    /// Whether the document has a `steps` key at all.
    has_steps: bool,
}

impl Outline {
    fn of(root: &Node) -> Outline {
        let mut steps = Vec::new();
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

fn resolve_params(
    declared: BTreeMap<String, yaml::Checked<yaml::Spanned<spec::ParamSpec>>>,
    given: &[(String, String)],
    missing: MissingParams,
    diags: &mut Diagnostics,
) -> Vec<Param> {
    let mut out = Vec::new();
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
        for (given_name, text) in given.iter().filter(|(n, _)| n == name) {
            match ParamValue::parse(spec.ty, text) {
                Ok(v) => value = Some(v),
                Err(message) => diags.error(
                    Loc::UNKNOWN,
                    None,
                    format!("--param {given_name}: {message}"),
                ),
            }
        }
        if value.is_none() && missing == MissingParams::Refuse && spec.default.is_none() {
            diags.error(
                loc,
                None,
                format!("parameter `{name}` has no default and no value; pass --param {name}=..."),
            );
        }
        out.push(Param {
            name: name.clone(),
            ty: spec.ty,
            description: spec.description.clone(),
            secret: spec.secret,
            value,
        });
    }
    for (name, _) in given {
        if !declared.contains_key(name) {
            let mut message = format!("--param {name}: the runbook declares no parameter `{name}`");
            if let Some(best) = crate::suggest::closest(name, declared.keys().map(String::as_str)) {
                message.push_str(&format!(", did you mean `{best}`?"));
            }
            diags.error(Loc::UNKNOWN, None, message);
        }
    }
    out
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
    let runbook_role = spec.assume_role.and_then(|r| r.0);
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

    let default_region = regions.as_ref().map(|r| r.to.as_str());
    let mut steps = Vec::with_capacity(raw_steps.len());
    let mut need_locs: Vec<Vec<Loc>> = Vec::with_capacity(raw_steps.len());
    for s in &raw_steps {
        let id = s.id.value.as_str();
        let action = s.action.value;
        let with = s.with.clone().unwrap_or(Node {
            loc: s.action.loc,
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
            s.action.loc,
            id,
            diags,
        );
        let mut needs = Vec::new();
        let mut locs = Vec::new();
        for need in &s.needs {
            match index.get(need.value.as_str()) {
                Some(_) if need.value == id => {
                    diags.error(need.loc, Some(id), format!("dependency cycle: {id} → {id}"));
                }
                Some(&j) => {
                    if needs.contains(&j) {
                        diags.warning(
                            need.loc,
                            Some(id),
                            format!("`{}` is listed twice in `needs`", need.value),
                        );
                    } else {
                        needs.push(j);
                        locs.push(need.loc);
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
        let when = match s.when.as_ref().map(|w| &w.value) {
            None => vec![Mode::Failover, Mode::Switchover, Mode::Drill],
            Some(w) => {
                let list = match w {
                    spec::WhenSpec::One(one) => vec![one.to_owned()],
                    spec::WhenSpec::Many(many) => many.clone(),
                };
                if list.is_empty() {
                    diags.error(
                        s.when.as_ref().map_or(s.id.loc, |w| w.loc),
                        Some(id),
                        "`when` lists no mode",
                    );
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
        };
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
        need_locs.push(locs);
        let Some(input) = input else { continue };
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
    if steps.len() != raw_steps.len() {
        // Some `with` block did not decode; its problems are reported.
        return None;
    }

    report_cycles(&steps, &need_locs, diags);

    // restores_service: at most one, and downstream of something.
    let restoring: Vec<&Step> = steps.iter().filter(|s| s.restores_service).collect();
    if restoring.len() > 1 {
        for s in &restoring[1..] {
            diags.error(
                s.loc,
                Some(&s.id),
                format!(
                    "only one step may be marked `restores_service`; `{}` already is",
                    restoring[0].id
                ),
            );
        }
    }
    if let Some(s) = restoring.first()
        && s.needs.is_empty()
        && steps.len() > 1
    {
        diags.error(
            s.loc,
            Some(&s.id),
            "`restores_service` step needs no other step, so service would count as restored before any recovery ran",
        );
    }

    // Run-time references to step outputs must point upstream.
    for (i, s) in steps.iter().enumerate() {
        let mut refs = interp::references(&s.with);
        for call in s.rollback.iter().chain(s.fallback.iter()) {
            refs.extend(interp::references(&call.with));
        }
        for (loc, name) in refs {
            if let Some(Ok(RuntimeRef::StepOutput { step, .. })) = interp::runtime_ref(&name) {
                match index.get(step) {
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
    let planned = matches!(
        spec.strategy.0,
        Some(Strategy::Failback | Strategy::MultiAz)
    );
    if let Some(r) = regions.as_ref().filter(|_| !planned) {
        for s in steps.iter().filter(|s| s.runs_in(Mode::Failover)) {
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

    let recovery_point = spec.recovery_point.and_then(|r| r.0);
    if let Some(RecoveryPoint::RdsSnapshot { step }) = &recovery_point
        && !index.contains_key(step.as_str())
    {
        diags.error(
            Loc::UNKNOWN,
            None,
            format!("`recovery_point.step` names an unknown step `{step}`"),
        );
    }
    let drill = spec.drill.and_then(|d| d.0).map(|d| {
        check_drill_placement(&d.value, d.loc, diags);
        d.value
    });
    Some(Runbook {
        name,
        description: spec.description,
        strategy: spec.strategy.0?,
        params,
        targets: spec.targets.and_then(|t| t.0).unwrap_or_default(),
        regions,
        recovery_point,
        drill: drill.unwrap_or_default(),
        steps,
    })
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
