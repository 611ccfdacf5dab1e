//! Cross-account runs: a runbook's `assume_role` is assumed through STS and
//! every call of its steps acts in the role's account. The emulator keeps
//! one backend per account and maps assumed-role credentials to the role's
//! account, so the same names in two accounts tell them apart.

use crate::moto::Moto;

const ROLE: &str = "arn:aws:iam::111111111111:role/lifeboat-dr";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runbook_s_role_promotes_the_replica_in_the_role_s_account_only() {
    let moto = Moto::start();
    let own = moto.clients().await;
    let theirs = own.assuming(ROLE, Some("dr-external-id"), "seed").await;
    // The same names in both accounts: the decoy is this caller's own.
    crate::seed::primary_and_replica(&own, "app-db", "app-db-replica").await;
    crate::seed::primary_and_replica(&theirs, "app-db", "app-db-replica").await;
    let decoy = crate::inventory::inventory(&own, false).await;
    // Only the role's replica reports a lag: an RPO read in the wrong
    // account would find none.
    moto.set_account_replica_lag("123456789012", "us-west-2", "app-db-replica", None);
    moto.set_account_replica_lag("111111111111", "us-west-2", "app-db-replica", Some(2.0));
    crate::seed::wait_for_replica_lag(&theirs, "us-west-2", "app-db-replica", 2.0).await;

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

    assert_eq!(
        crate::seed::db(&theirs, "us-west-2", "app-db-replica")
            .await
            .and_then(|d| d.backup_retention_period()),
        Some(7),
        "promoted in the role's account"
    );
    assert_eq!(
        crate::inventory::inventory(&own, false).await,
        decoy,
        "the caller's own account is untouched"
    );

    // The journal says whom the step acted as.
    let runs = crate::run::lifeboat(&state, &["runs", "--output", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("JSON");
    let id = runs[0]["id"].as_str().expect("run id").to_string();
    let show = crate::run::lifeboat(&state, &["show", &id, "--output", "json"]);
    let show: serde_json::Value = serde_json::from_slice(&show.stdout).expect("JSON");
    let step = &show["steps"][0];
    assert_eq!(step["outputs"]["account"], "111111111111", "{show}");
    let principal = step["outputs"]["acting_as"].as_str().unwrap_or_default();
    assert!(
        principal.contains("assumed-role/lifeboat-dr/lifeboat-"),
        "session lifeboat-<run>: {principal}"
    );
    // The recovery point was read in the role's account too.
    let report = crate::run::lifeboat(&state, &["report", &id, "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&report.stdout).expect("JSON");
    assert!(
        report["rpo"]["seconds"].is_number()
            && report["rpo"]["how"]
                .as_str()
                .is_some_and(|h| h.contains("was 2 s at")),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_account_drill_makes_and_removes_its_copies_in_the_role_s_account() {
    let moto = Moto::start();
    let own = moto.clients().await;
    let theirs = own.assuming(ROLE, None, "seed").await;
    crate::seed::primary_and_replica(&own, "app-db", "app-db-replica").await;
    crate::seed::primary_and_replica(&theirs, "app-db", "app-db-replica").await;
    let (own_before, theirs_before) = (
        crate::inventory::inventory(&own, false).await,
        crate::inventory::inventory(&theirs, false).await,
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
        crate::inventory::inventory(&theirs, true).await.is_empty(),
        "no drill resource left in the role's account"
    );
    assert_eq!(
        crate::inventory::inventory(&theirs, false).await,
        theirs_before
    );
    assert_eq!(crate::inventory::inventory(&own, false).await, own_before);
}
