//! The commands about runbooks themselves, offline: `validate`, `plan`,
//! `iam-policy`, `actions`, `schema`, `check-config`, `completions`, `man`.

use std::fmt::Write as _;
use std::path::Path;

use clap::CommandFactory;
use serde::Serialize;

use super::args::{Cli, Output, SchemaKind};
use super::error::CliError;
use super::shared::{eprint, load_config, load_file, print, read_runbook};
use crate::catalogue::ActionKind;
use crate::diag::{Diagnostic, Severity};
use crate::runbook::plan::Plan;
use crate::runbook::{self, MissingParams, Mode};

/// `lifeboat man`: one page printed, or every page written into `dir`.
pub(super) fn man(subcommand: Option<&str>, dir: Option<&Path>) -> Result<(), CliError> {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(CliError::Output)?;
        clap_mangen::generate_to(cli, dir).map_err(CliError::Output)?;
        let mut written: Vec<String> = std::fs::read_dir(dir)
            .map_err(CliError::Output)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("lifeboat") && n.ends_with(".1"))
            .collect();
        written.sort();
        return print(&format!(
            "wrote {} man pages into {}: {}\n",
            written.len(),
            dir.display(),
            written.join(" ")
        ));
    }
    let page = match subcommand {
        None => cli,
        Some(name) => match cli.find_subcommand(name) {
            // Built, so it carries the name `generate_to` gives its page.
            Some(sub) => sub.clone(),
            None => {
                let known: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
                return Err(CliError::Usage(format!(
                    "no subcommand `{name}`; the subcommands: {}",
                    known.join(", ")
                )));
            }
        },
    };
    let mut buf = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut buf)
        .map_err(CliError::Output)?;
    print(&String::from_utf8_lossy(&buf))
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    steps: Option<usize>,
    diagnostics: Vec<Diagnostic>,
}

pub(super) fn validate(files: &[std::path::PathBuf], output: Output) -> Result<(), CliError> {
    let mut reports = Vec::new();
    for path in files {
        let name = path.display().to_string();
        let report = match read_runbook(path) {
            Err(e) => FileReport {
                file: name.clone(),
                valid: false,
                steps: None,
                diagnostics: vec![Diagnostic {
                    file: name,
                    loc: crate::yaml::Loc::UNKNOWN,
                    severity: Severity::Error,
                    step: None,
                    message: e.to_string(),
                }],
            },
            Ok(text) => match runbook::load(&name, &text, &[], MissingParams::Placeholder) {
                Ok(loaded) => FileReport {
                    file: name,
                    valid: true,
                    steps: Some(loaded.runbook.steps.len()),
                    diagnostics: loaded.warnings,
                },
                Err(problems) => FileReport {
                    file: name,
                    valid: false,
                    steps: None,
                    diagnostics: problems,
                },
            },
        };
        reports.push(report);
    }
    let invalid = reports.iter().filter(|r| !r.valid).count();
    match output {
        Output::Json => print(&format!("{}\n", serde_json::to_string_pretty(&reports)?))?,
        Output::Text => {
            for r in &reports {
                for d in &r.diagnostics {
                    eprint(&d.to_string());
                }
                if let Some(steps) = r.steps {
                    print(&format!("{}: ok ({steps} steps)\n", r.file))?;
                }
            }
            if invalid > 0 {
                let errors: usize = reports
                    .iter()
                    .flat_map(|r| &r.diagnostics)
                    .filter(|d| d.severity == Severity::Error)
                    .count();
                eprint(&format!("{errors} error(s) in {invalid} file(s)"));
            }
        }
    }
    if invalid > 0 {
        return Err(CliError::Invalid { count: invalid });
    }
    Ok(())
}

pub(super) fn plan(
    file: &Path,
    params: &[(String, String)],
    mode: Mode,
    output: Output,
) -> Result<(), CliError> {
    let (_, _, loaded) = load_file(file, params)?;
    let view = Plan::new(&loaded.runbook, mode).view();
    match output {
        Output::Json => print(&format!("{}\n", serde_json::to_string_pretty(&view)?)),
        Output::Text => print(&view.render()),
    }
}

/// `lifeboat iam-policy FILE...`.
pub(super) fn iam_policy(
    files: &[std::path::PathBuf],
    params: &[(String, String)],
    mode: Mode,
    role: Option<&str>,
    resolve: bool,
    caller: Option<String>,
) -> Result<(), CliError> {
    use crate::iam::Principal;
    let mut runbooks = Vec::new();
    for file in files {
        runbooks.push(load_file(file, params)?.2.runbook);
    }
    let (resolved, caller) = if resolve {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CliError::Runtime)?;
        let (resolved, identity) = runtime
            .block_on(async {
                let aws = crate::aws::AwsClients::load(
                    &crate::aws::AwsSettings::default(),
                    crate::aws::Credentials::Chain,
                )
                .await;
                crate::actions::resolve::resolve(&aws, &runbooks, mode).await
            })
            .map_err(|e| CliError::Lookup(format!("iam-policy --resolve: {e}")))?;
        (resolved, caller.or(Some(identity)))
    } else {
        (crate::iam::Resolved::default(), caller)
    };
    let mut all = crate::iam::policies(&runbooks, mode, &resolved);
    if caller.is_none() && all.len() > 1 && role.is_none_or(|r| r != "caller") {
        eprintln!(
            "iam-policy: pass --caller ARN (or --resolve) to print the trust policy each assumed role needs"
        );
    }
    let document = match role {
        Some(which) => {
            let wanted = match which {
                "caller" => Principal::Caller,
                arn => Principal::Role(arn.to_string()),
            };
            let known: Vec<String> = all
                .iter()
                .filter_map(|(p, _)| match p {
                    Principal::Role(arn) => Some(arn.clone()),
                    Principal::Caller => None,
                })
                .collect();
            match all.into_iter().find(|(p, _)| *p == wanted) {
                Some((_, policy)) => policy,
                None => {
                    return Err(CliError::Usage(format!(
                        "--role {which}: no step of these runbooks acts as it in {mode} mode; {}",
                        if known.is_empty() {
                            "they assume no role (use `--role caller`)".to_string()
                        } else {
                            format!("the roles they assume: {}", known.join(", "))
                        }
                    )));
                }
            }
        }
        None if all.len() == 1 => all.remove(0).1,
        None => serde_json::json!({
            "policies": all
                .into_iter()
                .map(|(p, policy)| match &p {
                    Principal::Caller => serde_json::json!({
                        "principal": "caller",
                        "policy": policy,
                    }),
                    Principal::Role(arn) => {
                        let mut entry = serde_json::json!({
                            "principal": arn,
                            "account": p.account(),
                            "policy": policy,
                        });
                        if let Some(caller) = &caller {
                            entry["trust_policy"] =
                                crate::iam::trust_policy(&runbooks, mode, arn, caller);
                        }
                        entry
                    }
                })
                .collect::<Vec<_>>(),
        }),
    };
    print(&format!("{}\n", serde_json::to_string_pretty(&document)?))
}

#[derive(Serialize)]
struct ActionRow {
    #[serde(flatten)]
    info: crate::catalogue::ActionInfo,
}

pub(super) fn actions(output: Output) -> Result<(), CliError> {
    let rows: Vec<ActionRow> = ActionKind::ALL
        .iter()
        .map(|a| ActionRow { info: a.info() })
        .collect();
    match output {
        Output::Json => print(&format!("{}\n", serde_json::to_string_pretty(&rows)?)),
        Output::Text => {
            let width = rows.iter().map(|r| r.info.name.len()).max().unwrap_or(0);
            let mut drills = Vec::with_capacity(rows.len());
            for r in &rows {
                let drill = serde_json::to_value(r.info.drill)?;
                drills.push(format!("drill: {}", drill.as_str().unwrap_or("")));
            }
            let drill_width = drills.iter().map(String::len).max().unwrap_or(0);
            let mut out = String::new();
            for (r, drill) in rows.iter().zip(&drills) {
                let _ = writeln!(
                    out,
                    "{:width$}  {drill:drill_width$}  {}",
                    r.info.name, r.info.summary
                );
            }
            // The rungs the actions are put together into.
            let _ = writeln!(
                out,
                "\nstrategies (`strategy:`), up the DR ladder, with the runbooks shipped for each:"
            );
            for strategy in runbook::Strategy::LADDER {
                let shipped: Vec<&str> = crate::shipped::RUNBOOKS
                    .iter()
                    .filter(|(file, text)| {
                        runbook::load(file, text, &[], MissingParams::Placeholder)
                            .is_ok_and(|l| l.runbook.strategy == strategy)
                    })
                    .map(|(file, _)| *file)
                    .collect();
                let _ = writeln!(out, "  {:16} {}", strategy.as_str(), shipped.join(", "));
            }
            print(&out)
        }
    }
}

/// `lifeboat schema`.
pub(super) fn schema(kind: SchemaKind) -> Result<(), CliError> {
    let schema = match kind {
        SchemaKind::Runbook => runbook::schema::runbook(),
        SchemaKind::Config => crate::config::schema(),
    };
    print(&format!("{}\n", serde_json::to_string_pretty(&schema)?))
}

/// `lifeboat check-config`.
pub(super) fn check_config(file: &Path) -> Result<(), CliError> {
    load_config(file)?;
    print(&format!("{}: ok\n", file.display()))
}

/// `lifeboat completions`.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<(), CliError> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "lifeboat", &mut buf);
    print(&String::from_utf8_lossy(&buf))
}
