//! Cross-account runs: a runbook's `assume_role` is assumed through STS and
//! every call of its steps acts in the role's account. The emulator keeps
//! one backend per account and maps assumed-role credentials to the role's
//! account, so the same names in two accounts tell them apart.

use crate::support::moto::Moto;

const ROLE: &str = "arn:aws:iam::111111111111:role/lifeboat-dr";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runbook_s_role_promotes_the_replica_in_the_role_s_account_only() {
    let moto = Moto::start();
    let own = moto.clients().await;
    let theirs = own.assuming(ROLE, Some("dr-external-id"), "seed").await;
    // The same names in both accounts: the decoy is this caller's own.
    crate::support::seed::primary_and_replica(&own, "app-db", "app-db-replica").await;
    crate::support::seed::primary_and_replica(&theirs, "app-db", "app-db-replica").await;
    let decoy = crate::support::inventory::inventory(&own, false).await;
    // Only the role's replica reports a lag: an RPO read in the wrong
    // account would find none.
    moto.set_account_replica_lag("123456789012", "us-west-2", "app-db-replica", None);
    moto.set_account_replica_lag("111111111111", "us-west-2", "app-db-replica", Some(2.0));
    crate::support::seed::wait_for_replica_lag(&theirs, "us-west-2", "app-db-replica", 2.0).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let runbook = dir.path().join("cross-account.yaml");
    std::fs::write(
        &runbook,
        format!(
            "name: cross-account-promote\nstrategy: pilot-light\nregions: {{ from: us-east-1, to: us-west-2 }}\nassume_role: {{ role_arn: \"{ROLE}\", external_id: dr-external-id }}\nrecovery_point: {{ from: rds.replica_lag, db_instance: app-db-replica }}\nsteps:\n  - id: promote-db\n    action: rds.promote_read_replica\n    with: {{ db_instance: app-db-replica, backup_retention_days: 7 }}\n"
        ),
    )
    .expect("write the runbook");
    let state = dir.path().join("state");
    // `check` says, per step, whom it will act as.
    let check = moto
        .lifeboat(&state)
        .args(["check", runbook.to_str().expect("utf-8")])
        .output()
        .expect("run lifeboat check");
    let said = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(0), "{said}");
    assert!(
        said.contains("as arn:aws:sts::111111111111:assumed-role/lifeboat-dr/")
            && said.contains("(account 111111111111)"),
        "{said}"
    );
    // The run is authorized as IAM would: the caller's policy, the role's,
    // and the role's trust policy, all as `iam-policy --resolve` prints them.
    let printed = moto
        .lifeboat(&state)
        .args(["iam-policy", runbook.to_str().expect("utf-8"), "--resolve"])
        .output()
        .expect("run lifeboat iam-policy");
    assert_eq!(printed.status.code(), Some(0));
    let printed: serde_json::Value = serde_json::from_slice(&printed.stdout).expect("JSON");
    let role = &printed["policies"][1];
    assert_eq!(role["principal"], ROLE);
    let trust = &role["trust_policy"]["Statement"][0];
    assert_eq!(trust["Action"], "sts:AssumeRole");
    assert_eq!(
        trust["Principal"]["AWS"],
        "arn:aws:sts::123456789012:user/moto"
    );
    assert_eq!(
        trust["Condition"]["StringEquals"]["sts:ExternalId"],
        serde_json::json!(["dr-external-id"])
    );
    assert!(
        role["policy"]
            .to_string()
            .contains("arn:aws:rds:us-west-2:111111111111:db:app-db-replica"),
        "the role's resources are in its account: {}",
        role["policy"]
    );
    // A trust policy asking for another external id refuses the role.
    let mut untrusted = printed.clone();
    untrusted["policies"][1]["trust_policy"]["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"] =
        serde_json::json!(["another-id"]);
    moto.enforce_printed(&untrusted);
    let refused = moto
        .lifeboat(&state)
        .args(["check", runbook.to_str().expect("utf-8")])
        .output()
        .expect("run lifeboat check");
    assert_ne!(refused.status.code(), Some(0));
    let denied = moto.iam_decisions()["denied"].to_string();
    assert!(
        denied.contains("sts:AssumeRole") && denied.contains("trust policy"),
        "{denied}"
    );
    moto.enforce_printed(&printed);
    let out = moto
        .lifeboat(&state)
        .args(["run", "--yes", runbook.to_str().expect("utf-8")])
        .output()
        .expect("run lifeboat");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    moto.assert_authorized();

    assert_eq!(
        crate::support::seed::db(&theirs, "us-west-2", "app-db-replica")
            .await
            .and_then(|d| d.backup_retention_period()),
        Some(7),
        "promoted in the role's account"
    );
    assert_eq!(
        crate::support::inventory::inventory(&own, false).await,
        decoy,
        "the caller's own account is untouched"
    );

    // The journal says whom the step acted as.
    let runs = crate::support::lifeboat(&state, &["runs", "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
    let id = runs[0]["id"].as_str().expect("run id").to_string();
    let show = crate::support::lifeboat(&state, &["show", &id, "--output", "json"]);
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    let step = &show["steps"][0];
    assert_eq!(step["outputs"]["account"], "111111111111", "{show}");
    let principal = step["outputs"]["acting_as"].as_str().unwrap_or_default();
    assert!(
        principal.contains("assumed-role/lifeboat-dr/lifeboat-"),
        "session lifeboat-<run>: {principal}"
    );
    // The recovery point was read in the role's account too.
    let report = crate::support::lifeboat(&state, &["report", &id, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert!(
        report["rpo"]["seconds"].is_number()
            && report["rpo"]["how"]
                .as_str()
                .is_some_and(|h| h.contains("was 2 s at")),
        "{report}"
    );
    // The report says whom the step acted as.
    assert_eq!(report["accounts"][0]["step"], "promote-db", "{report}");
    assert_eq!(report["accounts"][0]["account"], "111111111111");
    let text = crate::support::lifeboat(&state, &["report", &id]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("## Accounts")
            && text.contains(
                "`promote-db` acted as arn:aws:sts::111111111111:assumed-role/lifeboat-dr/"
            ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_account_drill_makes_and_removes_its_copies_in_the_role_s_account() {
    let moto = Moto::start();
    let own = moto.clients().await;
    let theirs = own.assuming(ROLE, None, "seed").await;
    crate::support::seed::primary_and_replica(&own, "app-db", "app-db-replica").await;
    crate::support::seed::primary_and_replica(&theirs, "app-db", "app-db-replica").await;
    let (own_before, theirs_before) = (
        crate::support::inventory::inventory(&own, false).await,
        crate::support::inventory::inventory(&theirs, false).await,
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let runbook = dir.path().join("cross-account.yaml");
    std::fs::write(
        &runbook,
        format!(
            "name: cross-account-promote\nstrategy: pilot-light\nregions: {{ from: us-east-1, to: us-west-2 }}\nsteps:\n  - id: promote-db\n    action: rds.promote_read_replica\n    assume_role: {{ role_arn: \"{ROLE}\" }}\n    with: {{ db_instance: app-db-replica }}\n"
        ),
    )
    .expect("write the runbook");
    let state = dir.path().join("state");
    let out = moto
        .lifeboat(&state)
        .args(["drill", "--yes", runbook.to_str().expect("utf-8")])
        .output()
        .expect("run the drill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("teardown: removed 2 drill resource(s)"),
        "the drill's snapshot and restored copy: {stderr}"
    );
    assert!(
        crate::support::inventory::inventory(&theirs, true)
            .await
            .is_empty(),
        "no drill resource left in the role's account"
    );
    assert_eq!(
        crate::support::inventory::inventory(&theirs, false).await,
        theirs_before
    );
    assert_eq!(
        crate::support::inventory::inventory(&own, false).await,
        own_before
    );
}

/// A runbook with a step of its own and a step in another account: the
/// run's confirmation names whom each acts as, the principals say the
/// accounts, and `iam-policy` gives each principal its own policy (the
/// caller's with `sts:AssumeRole` on the role, not the role's actions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_principal_is_named_before_the_run_and_gets_its_own_policy() {
    let moto = Moto::start();
    let own = moto.clients().await;
    let theirs = own.assuming(ROLE, None, "seed").await;
    crate::support::seed::primary_and_replica(&theirs, "app-db", "app-db-replica").await;
    crate::support::seed::zone(&own, "example.com", &[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let runbook = dir.path().join("two-accounts.yaml");
    let text = format!(
        "name: two-accounts\nstrategy: pilot-light\nregions: {{ from: us-east-1, to: us-west-2 }}\nsteps:\n  - id: promote-db\n    action: rds.promote_read_replica\n    assume_role: {{ role_arn: \"{ROLE}\" }}\n    with: {{ db_instance: app-db-replica }}\n  - id: switch-dns\n    action: route53.upsert_records\n    needs: [promote-db]\n    with: {{ zone: example.com, records: [{{ name: app.example.com, type: A, values: [\"198.51.100.10\"] }}] }}\n"
    );
    std::fs::write(&runbook, &text).expect("write the runbook");
    let path = runbook.to_str().expect("utf-8");

    let loaded = lifeboat::runbook::load(
        "two-accounts.yaml",
        &text,
        &[],
        lifeboat::runbook::MissingParams::Refuse,
    )
    .expect("loads");
    let registry = lifeboat::actions::Registry::with_aws(own.clone());
    let acting = registry
        .principals(&loaded.runbook, lifeboat::runbook::Mode::Failover, "r1")
        .await;
    assert_eq!(acting.len(), 2, "{acting:?}");
    assert_eq!(acting[0].role.as_deref(), Some(ROLE));
    assert_eq!(acting[0].steps, ["promote-db"]);
    assert_eq!(
        acting[0].identity.as_ref().map(|w| w.account.as_str()),
        Ok("111111111111")
    );
    assert_eq!(acting[1].role, None);
    assert_eq!(acting[1].steps, ["switch-dns"]);
    assert_eq!(
        acting[1].identity.as_ref().map(|w| w.account.as_str()),
        Ok("123456789012")
    );

    // Asked on a terminal, the confirmation names them; "n" runs nothing.
    let before = crate::support::inventory::inventory(&theirs, false).await;
    let state = dir.path().join("state");
    let program = env!("CARGO_BIN_EXE_lifeboat");
    let mut child = std::process::Command::new("script")
        .args(["-qec", &format!("{program} run {path}"), "/dev/null"])
        .env_remove("AWS_PROFILE")
        .envs(
            moto.lifeboat(&state)
                .get_envs()
                .filter_map(|(k, v)| Some((k, v?))),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run lifeboat on a terminal");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        std::thread::sleep(std::time::Duration::from_secs(3));
        let _ = stdin.write_all(b"n\n");
    }
    let out = child.wait_with_output().expect("lifeboat ends");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("It acts in AWS as:")
            && said.contains(&format!(
                "role {ROLE} as arn:aws:sts::111111111111:assumed-role/lifeboat-dr/"
            ))
            && said.contains("(account 111111111111): promote-db")
            && said.contains("(account 123456789012): switch-dns")
            && said.contains("not confirmed; nothing was run"),
        "{said}"
    );
    assert_eq!(
        crate::support::inventory::inventory(&theirs, false).await,
        before
    );

    let policy = |extra: &[&str]| {
        let mut args = vec!["iam-policy", path];
        args.extend_from_slice(extra);
        let out = crate::support::lifeboat(&state, &args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, grouped, _) = policy(&[]);
    assert_eq!(code, Some(0));
    let grouped: serde_json::Value = serde_json::from_str(&grouped).expect("JSON");
    let all = grouped["policies"]
        .as_array()
        .expect("grouped per principal");
    assert_eq!(all.len(), 2);
    let actions = |policy: &serde_json::Value| -> Vec<String> {
        policy["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["Action"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(all[0]["principal"], "caller");
    let caller = actions(&all[0]["policy"]);
    assert!(
        caller.contains(&"sts:AssumeRole".to_string())
            && caller.contains(&"route53:ChangeResourceRecordSets".to_string())
            && !caller.iter().any(|a| a.starts_with("rds:")),
        "{caller:?}"
    );
    assert_eq!(all[1]["principal"], ROLE);
    assert_eq!(all[1]["account"], "111111111111");
    let role = actions(&all[1]["policy"]);
    assert!(
        role.contains(&"rds:PromoteReadReplica".to_string())
            && !role
                .iter()
                .any(|a| a.starts_with("route53:") || a == "sts:AssumeRole"),
        "{role:?}"
    );
    let (code, alone, _) = policy(&["--role", ROLE]);
    assert_eq!(code, Some(0));
    let alone: serde_json::Value = serde_json::from_str(&alone).expect("JSON");
    assert_eq!(alone, all[1]["policy"], "one principal's document, as is");
    let (code, _, err) = policy(&["--role", "arn:aws:iam::999999999999:role/nobody"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&format!("the roles they assume: {ROLE}")),
        "{err}"
    );
}
