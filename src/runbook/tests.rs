//! Validation and planning, on runbooks written for each rule.

use super::plan::Plan;
use super::*;

fn errors(text: &str) -> Vec<String> {
    match load("rb.yaml", text, &[], MissingParams::Placeholder) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

fn loaded(text: &str) -> Loaded {
    match load("rb.yaml", text, &[], MissingParams::Refuse) {
        Ok(l) => l,
        Err(problems) => panic!("{problems:#?}"),
    }
}

const HEAD: &str = "name: t\nstrategy: pilot-light\nregions: { from: us-east-1, to: us-west-2 }\n";

#[test]
fn five_mistakes_give_five_located_messages() {
    let text = "\
name: broken
strategy: pilot-light
params:
  dr_region: { default: us-west-2 }
steps:
  - id: promote
    action: rds.promote_replica
    region: ${dr_region}
    with: { db_instance: db }
  - id: start
    action: ec2.start_instances
    region: ${dr_regoin}
    with: { tags: { Role: app } }
    timout: 5m
  - id: dns
    action: route53.upsert_records
    needs: [promote, strat]
    with: { zone: example.com, records: [] }
  - id: verify
    action: http.wait_healthy
    region: us-west-2
    needs: [dns]
    with: { url: 'https://app/healthz', status: two-hundred }
";
    let got = errors(text);
    assert_eq!(
        got,
        vec![
            "rb.yaml:7:13: error: step `promote`: unknown action `rds.promote_replica`, did you mean `rds.promote_read_replica`?",
            "rb.yaml:12:13: error: step `start`: undefined parameter `dr_regoin`, did you mean `dr_region`?",
            "rb.yaml:14:5: error: step `start`: unknown field `timout`, did you mean `timeout`?",
            "rb.yaml:17:22: error: step `dns`: `needs` names an unknown step `strat`, did you mean `start`?",
            "rb.yaml:18:11: error: step `dns`: `records` is empty",
            "rb.yaml:23:49: error: step `verify`: expected an integer (u16), found `two-hundred`",
        ],
    );
}

#[test]
fn cycle_is_reported_with_its_whole_chain() {
    let text = format!(
        "{HEAD}steps:
  - {{ id: a, action: wait, with: {{ duration: 1s }}, needs: [c] }}
  - {{ id: b, action: wait, with: {{ duration: 1s }}, needs: [a] }}
  - {{ id: c, action: wait, with: {{ duration: 1s }}, needs: [b] }}
  - {{ id: d, action: wait, with: {{ duration: 1s }}, needs: [d] }}
"
    );
    let got = errors(&text);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got.iter()
            .any(|e| e.contains("dependency cycle: a → b → c → a")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|e| e.contains("dependency cycle: d → d")),
        "{got:#?}"
    );
}

#[test]
fn duplicate_ids_and_bad_ids_are_refused() {
    let text = format!(
        "{HEAD}steps:
  - {{ id: a, action: wait, with: {{ duration: 1s }} }}
  - {{ id: a, action: wait, with: {{ duration: 1s }} }}
  - {{ id: Bad Id, action: wait, with: {{ duration: 1s }} }}
"
    );
    let got = errors(&text);
    assert!(
        got.iter()
            .any(|e| e.contains("duplicate step id (first at 5:11)")),
        "{got:#?}"
    );
    assert!(got.iter().any(|e| e.contains("a step id is")), "{got:#?}");
}

#[test]
fn restores_service_must_follow_something() {
    let text = format!(
        "{HEAD}steps:
  - {{ id: a, action: wait, with: {{ duration: 1s }}, restores_service: true }}
  - {{ id: b, action: wait, with: {{ duration: 1s }}, needs: [a] }}
"
    );
    let got = errors(&text);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].contains("`restores_service` step needs no other step"),
        "{got:#?}"
    );
}

#[test]
fn failover_step_on_failed_regions_control_plane_is_a_warning() {
    let text = format!(
        "{HEAD}steps:
  - {{ id: stop-primary, action: ec2.stop_instances, region: us-east-1, with: {{ tags: {{ Role: app }} }} }}
  - {{ id: planned-only, action: ec2.stop_instances, region: us-east-1, when: switchover, with: {{ tags: {{ Role: app }} }} }}
  - {{ id: dr, action: ec2.start_instances, with: {{ tags: {{ Role: app }} }} }}
"
    );
    let l = loaded(&text);
    let warnings: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("step `stop-primary`"), "{warnings:#?}");
    assert!(
        warnings[0].contains("EC2 control plane in us-east-1"),
        "{warnings:#?}"
    );
    assert_eq!(l.runbook.steps[2].region.as_deref(), Some("us-west-2"));
}

#[test]
fn route53_counts_as_us_east_1_for_static_stability() {
    let text = format!(
        "{HEAD}steps:
  - {{ id: dns, action: route53.upsert_records, with: {{ zone: z, records: [{{ name: a.z, type: A, values: [1.2.3.4] }}] }} }}
"
    );
    let l = loaded(&text);
    assert_eq!(l.runbook.steps[0].region.as_deref(), Some("us-east-1"));
    assert!(
        l.warnings[0]
            .message
            .contains("Route 53 control plane, which lives in us-east-1")
    );
}

#[test]
fn step_outputs_must_come_from_upstream_steps() {
    let text = format!(
        "{HEAD}steps:
  - {{ id: a, action: exec, with: {{ argv: [echo, hi] }} }}
  - {{ id: b, action: exec, with: {{ argv: [echo, hi] }} }}
  - {{ id: c, action: exec, needs: [a], with: {{ argv: [echo, '${{steps.a.outputs.x}}', '${{steps.b.outputs.y}}', '${{steps.zz.outputs.y}}'] }} }}
"
    );
    let got = errors(&text);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got.iter()
            .any(|e| e.contains("uses outputs of `b`, which this step does not need")),
        "{got:#?}"
    );
    assert!(
        got.iter().any(|e| e.contains("names an unknown step `zz`")),
        "{got:#?}"
    );
}

#[test]
fn parameters_are_typed_and_required_when_planning() {
    let text = "name: t
strategy: pilot-light
params:
  count: { type: int, default: two }
  region: {}
  token: { secret: true, default: hunter2 }
steps:
  - { id: a, action: ec2.launch_from_template, region: '${region}', with: { launch_template: lt, count: '${count}' } }
";
    let problems = load(
        "rb.yaml",
        text,
        &[("nope".into(), "1".into())],
        MissingParams::Refuse,
    )
    .unwrap_err();
    let got: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        got.iter().any(|e| e.contains(
            "4:32: error: default of parameter `count`: expected an integer, found `two`"
        )),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|e| e.contains("parameter `region` has no default and no value")),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|e| e.contains("--param nope: the runbook declares no parameter `nope`")),
        "{got:#?}"
    );

    let text = text.replace("default: two", "default: 2");
    let given = [("region".to_string(), "eu-west-1".to_string())];
    let l = load("rb.yaml", &text, &given, MissingParams::Refuse).unwrap();
    let step = &l.runbook.steps[0];
    assert_eq!(step.region.as_deref(), Some("eu-west-1"));
    assert!(matches!(&step.input, ActionInput::Ec2LaunchFromTemplate(w) if w.count == 2));
    let token = l.runbook.params.iter().find(|p| p.name == "token").unwrap();
    assert_eq!(token.shown(), crate::REDACTED);
    assert_eq!(l.runbook.secrets(), vec!["hunter2".to_string()]);
}

#[test]
fn list_parameters_expand_where_they_stand_alone() {
    let text = format!(
        "{HEAD}params:
  ids: {{ type: list, default: [i-1, i-2] }}
steps:
  - {{ id: a, action: ec2.start_instances, with: {{ instance_ids: '${{ids}}' }} }}
"
    );
    let l = loaded(&text);
    match &l.runbook.steps[0].input {
        ActionInput::Ec2StartInstances(w) => assert_eq!(
            w.instance_ids.as_deref(),
            Some(&["i-1".to_string(), "i-2".to_string()][..])
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn plan_runs_independent_steps_together_and_skips_through_left_out_steps() {
    let text = format!(
        "{HEAD}targets: {{ rto: 10m }}
steps:
  - {{ id: drain, action: wait, when: switchover, with: {{ duration: 1s }}, timeout: 1m }}
  - {{ id: db, action: wait, needs: [drain], with: {{ duration: 1s }}, timeout: 6m }}
  - {{ id: app, action: wait, with: {{ duration: 1s }}, timeout: 3m }}
  - {{ id: dns, action: wait, needs: [db, app], with: {{ duration: 1s }}, timeout: 2m }}
  - {{ id: check, action: wait, needs: [dns], with: {{ duration: 1s }}, timeout: 1m, restores_service: true }}
  - {{ id: tidy, action: wait, needs: [check], with: {{ duration: 1s }}, timeout: 30m }}
"
    );
    let l = loaded(&text);
    let ids = |v: &[usize]| {
        v.iter()
            .map(|&i| l.runbook.steps[i].id.as_str())
            .collect::<Vec<_>>()
    };

    let failover = Plan::new(&l.runbook, Mode::Failover);
    let waves: Vec<Vec<&str>> = failover.waves.iter().map(|w| ids(w)).collect();
    assert_eq!(
        waves,
        vec![vec!["db", "app"], vec!["dns"], vec!["check"], vec!["tidy"]]
    );
    assert_eq!(ids(&failover.critical_path), vec!["db", "dns", "check"]);
    assert_eq!(failover.budget, Duration::from_secs(9 * 60));
    assert_eq!(failover.view().critical_path.within_rto_target, Some(true));

    let switchover = Plan::new(&l.runbook, Mode::Switchover);
    assert_eq!(
        ids(&switchover.critical_path),
        vec!["drain", "db", "dns", "check"]
    );
    assert_eq!(switchover.budget, Duration::from_secs(10 * 60));
}

#[test]
fn ten_thousand_steps_validate_and_plan() {
    let mut text = String::from(HEAD);
    text.push_str("steps:\n");
    for i in 0..10_000 {
        let needs = if i == 0 {
            String::new()
        } else {
            format!(", needs: [s{}]", (i - 1) / 2)
        };
        text.push_str(&format!(
            "  - {{ id: s{i}, action: wait, with: {{ duration: 1s }}{needs} }}\n"
        ));
    }
    let l = loaded(&text);
    assert_eq!(l.runbook.steps.len(), 10_000);
    let plan = Plan::new(&l.runbook, Mode::Failover);
    assert_eq!(
        plan.waves.len(),
        14,
        "a binary tree of 10,000 nodes has 14 levels"
    );
}

#[test]
fn shipped_runbooks_validate_and_plan_in_every_mode() {
    for (file, text) in crate::shipped::RUNBOOKS {
        let l = match load(file, text, &[], MissingParams::Refuse) {
            Ok(l) => l,
            Err(p) => panic!("{file}: {p:#?}"),
        };
        for mode in [Mode::Failover, Mode::Switchover, Mode::Drill] {
            let plan = Plan::new(&l.runbook, mode);
            assert!(!plan.critical_path.is_empty(), "{file} {mode}");
            let restoring = l.runbook.steps.iter().position(|s| s.restores_service);
            assert_eq!(
                plan.critical_path.last().copied(),
                restoring,
                "{file} {mode}"
            );
        }
    }
}

#[test]
fn keys_take_parameters_too() {
    let text = "name: t\nstrategy: active-active\nparams:\n  east: { default: us-east-1 }\n  west: { default: us-west-2 }\nregions: { from: \"${east}\", to: \"${west}\" }\nsteps:\n  - id: drain\n    action: route53.set_weights\n    with: { zone: example.com, name: app.example.com, weights: { \"${east}\": 0, \"${west}\": \"100\" } }\n";
    let l = load(
        "t.yaml",
        text,
        &[("west".into(), "eu-west-1".into())],
        MissingParams::Refuse,
    )
    .unwrap_or_else(|p| panic!("{p:#?}"));
    let crate::catalogue::ActionInput::Route53SetWeights(w) = &l.runbook.steps[0].input else {
        panic!("{:?}", l.runbook.steps[0].input);
    };
    assert_eq!(
        w.weights,
        std::collections::BTreeMap::from([
            ("eu-west-1".to_string(), 100),
            ("us-east-1".to_string(), 0)
        ])
    );
}

#[test]
fn syntax_errors_are_located() {
    let got = errors("name: x\nsteps: [\n");
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with("rb.yaml:3:1: error: YAML syntax"),
        "{got:#?}"
    );
    let got = errors("- just\n- a list\n");
    assert!(got[0].contains("a runbook is a mapping"), "{got:#?}");
}

#[test]
fn a_drill_section_places_copies_and_its_ids_are_checked() {
    let steps =
        "steps:\n  - { id: s, action: ec2.start_instances, with: { tags: { Role: app } } }\n";
    let good = format!(
        "{HEAD}drill:\n  subnets: [subnet-1, subnet-2]\n  security_groups: [sg-1]\n  db_subnet_group: drill-db\n  db_security_groups: [sg-2]\n{steps}"
    );
    let d = loaded(&good).runbook.drill;
    assert_eq!(d.subnets, ["subnet-1", "subnet-2"]);
    assert_eq!(d.security_groups, ["sg-1"]);
    assert_eq!(d.db_subnet_group.as_deref(), Some("drill-db"));
    assert_eq!(d.db_security_groups, ["sg-2"]);
    assert_eq!(
        loaded(&format!("{HEAD}{steps}")).runbook.drill,
        DrillPlacement::default(),
        "no section: the sources' own placement"
    );
    let bad = format!(
        "{HEAD}drill: {{ subnets: [sg-1, subnet-1, subnet-1], db_security_groups: [subnet-9], vpc: x }}\n{steps}"
    );
    let got = errors(&bad);
    assert!(
        got.iter()
            .any(|e| e.contains("rb.yaml:4:") && e.contains("unknown field `vpc`")),
        "{got:#?}"
    );
    let bad = format!(
        "{HEAD}drill: {{ subnets: [sg-1, subnet-1, subnet-1], db_security_groups: [subnet-9] }}\n{steps}"
    );
    assert_eq!(
        errors(&bad),
        [
            "rb.yaml:4:8: error: `drill.subnets`: `sg-1` is not an id starting `subnet-`",
            "rb.yaml:4:8: error: `drill.subnets` names `subnet-1` twice",
            "rb.yaml:4:8: error: `drill.db_security_groups`: `subnet-9` is not an id starting `sg-`",
        ]
    );
    let roles = format!("{HEAD}drill: {{ instance_roles: [app-role, service/web] }}\n{steps}");
    assert_eq!(
        loaded(&roles).runbook.drill.instance_roles,
        ["app-role", "service/web"]
    );
    let bad = format!(
        "{HEAD}drill: {{ instance_roles: [\"arn:aws:iam::1:role/app\", \"app-*\", web, web] }}\n{steps}"
    );
    let got = errors(&bad);
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(
        got[0].contains("`arn:aws:iam::1:role/app` is not a role name"),
        "{got:#?}"
    );
    assert!(got[1].contains("`app-*` is not a role name"), "{got:#?}");
    assert!(
        got[2].ends_with("`drill.instance_roles` names `web` twice"),
        "{got:#?}"
    );
}

#[test]
fn more_recovery_regions_are_regions_other_than_the_failed_one_each_once() {
    let text = |also: &str| {
        format!(
            "name: t\nstrategy: active-active\nregions: {{ from: us-east-1, to: us-west-2, also: {also} }}\nsteps:\n  - {{ id: a, action: wait, with: {{ duration: 1s }} }}\n"
        )
    };
    let ok = loaded(&text("[eu-west-1]"));
    let regions = ok.runbook.regions.as_ref().expect("regions");
    assert_eq!(
        regions.recovery().collect::<Vec<_>>(),
        ["us-west-2", "eu-west-1"]
    );
    assert!(crate::runbook::regions_of(&ok.runbook).contains("eu-west-1"));
    let all = errors(&text("[us-east-1, us-west-2, mars-1]")).join("\n");
    assert!(
        all.contains("`regions.also` names `us-east-1`, the region failed away from"),
        "{all}"
    );
    assert!(
        all.contains("`regions.also` names `us-west-2` twice (or as `regions.to` too)"),
        "{all}"
    );
    assert!(all.contains("`mars-1` is not an AWS region name"), "{all}");
}

/// `parent`, with `child` carried in it as `child.yaml`.
fn with_child(parent: &str, child: &str) -> String {
    children::bundle(parent, &[("child.yaml".into(), child.into())])
}

const CHILD: &str = "\
name: data tier
strategy: pilot-light
params:
  db: { description: the replica }
  attempts: { type: int, default: 2 }
  token: { secret: true, default: s3cret-value }
recovery_point: { from: rds.replica_lag, db_instance: '${db}' }
steps:
  - id: check
    action: wait
    with: { duration: 1s }
  - id: promote
    action: rds.promote_read_replica
    needs: [check]
    retry: { attempts: '${attempts}' }
    with: { db_instance: '${db}' }
  - id: fence
    action: wait
    when: fence
    with: { duration: 1s }
  - id: announce
    action: notify
    needs: [promote]
    with: { webhook: 'https://hooks.example/dr', message: 'now at ${steps.promote.outputs.endpoint}, $${literal}' }
";

#[test]
fn a_child_runbooks_steps_take_its_steps_place() {
    let parent = format!(
        "{HEAD}steps:
  - id: drain
    action: wait
    with: {{ duration: 1s }}
  - id: data
    runbook: child.yaml
    needs: [drain]
    params: {{ db: orders-replica, attempts: 5 }}
  - id: dns
    action: notify
    needs: [data]
    restores_service: true
    with: {{ webhook: 'https://hooks.example/dr', message: 'db at ${{steps.data.promote.outputs.endpoint}}' }}
"
    );
    let rb = match load(
        "runbooks/parent.yaml",
        &with_child(&parent, CHILD),
        &[],
        MissingParams::Refuse,
    ) {
        Ok(l) => l.runbook,
        Err(problems) => panic!("{problems:#?}"),
    };
    let ids: Vec<&str> = rb.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "drain",
            "data.check",
            "data.promote",
            "data.fence",
            "data.announce",
            "dns"
        ]
    );
    let needs = |id: &str| -> Vec<&str> {
        rb.steps[rb.step_index(id).unwrap()]
            .needs
            .iter()
            .map(|&n| rb.steps[n].id.as_str())
            .collect()
    };
    // The child's first steps wait for what its step needs; what needs
    // the step waits for the child's last steps.
    assert_eq!(needs("data.check"), ["drain"]);
    assert_eq!(needs("data.fence"), ["drain"]);
    assert_eq!(needs("data.promote"), ["data.check"]);
    assert_eq!(needs("dns"), ["data.fence", "data.announce"]);
    // Its parameters are the step's; its references follow its renamed steps.
    let promote = &rb.steps[rb.step_index("data.promote").unwrap()];
    assert_eq!(promote.region.as_deref(), Some("us-west-2"));
    assert_eq!(promote.retry.attempts, 5);
    assert_eq!(
        promote.with.get("db_instance").unwrap().as_str(),
        Some("orders-replica")
    );
    let announce = &rb.steps[rb.step_index("data.announce").unwrap()];
    assert_eq!(
        announce.with.get("message").unwrap().as_str(),
        Some("now at ${steps.data.promote.outputs.endpoint}, $${literal}")
    );
    // Its modes are its own, its secrets are the parent's to hide, and
    // its recovery point is the parent's when the parent names none.
    assert_eq!(
        rb.steps[rb.step_index("data.fence").unwrap()].when,
        [Mode::Fence]
    );
    assert!(rb.secrets().contains(&"s3cret-value".to_string()));
    assert!(rb.params.iter().any(|p| p.name == "data.db"));
    assert_eq!(
        rb.recovery_point,
        Some(RecoveryPoint::RdsReplicaLag {
            db_instance: "orders-replica".into(),
            region: Some("us-west-2".into())
        })
    );
    let plan = Plan::new(&rb, Mode::Failover);
    let waves: Vec<Vec<&str>> = plan
        .waves
        .iter()
        .map(|w| w.iter().map(|&i| rb.steps[i].id.as_str()).collect())
        .collect();
    assert_eq!(
        waves,
        [
            vec!["drain"],
            vec!["data.check"],
            vec!["data.promote"],
            vec!["data.announce"],
            vec!["dns"]
        ]
    );
    assert_eq!(
        rb.steps[*plan.critical_path.last().unwrap()].id,
        "dns",
        "the parent's restores_service ends the critical path"
    );
}

#[test]
fn a_child_steps_when_narrows_the_childs_modes() {
    let parent = format!(
        "{HEAD}steps:
  - id: data
    runbook: child.yaml
    when: [failover, fence]
    params: {{ db: orders-replica }}
"
    );
    let rb = loaded(&with_child(&parent, CHILD)).runbook;
    let when = |id: &str| rb.steps[rb.step_index(id).unwrap()].when.clone();
    assert_eq!(when("data.promote"), [Mode::Failover]);
    assert_eq!(when("data.fence"), [Mode::Fence]);
    assert!(!Plan::new(&rb, Mode::Drill).includes(rb.step_index("data.check").unwrap()));
}

#[test]
fn a_child_step_is_refused_with_where_and_what() {
    let problems = |parent: &str, child: &str| -> Vec<String> {
        match load(
            "runbooks/parent.yaml",
            &with_child(parent, child),
            &[],
            MissingParams::Placeholder,
        ) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    };
    let step =
        |extra: &str| format!("{HEAD}steps:\n  - id: data\n    runbook: child.yaml\n{extra}");
    // Parameters: each one without a default is set, each one set is
    // declared and of the child's type.
    assert_eq!(
        problems(&step("    params: { dbb: x, attempts: many }\n"), CHILD),
        [
            "runbooks/parent.yaml:6:14: error: step `data`: the child runbook `child.yaml` needs its parameter `db` (it has no default): set it in `params`",
            "runbooks/parent.yaml:7:20: error: step `data`: `params.dbb`: `child.yaml` declares no parameter `dbb`, did you mean `db`?",
            "runbooks/parent.yaml:7:33: error: step `data`: `params.attempts`: expected an integer, found `many`",
        ]
    );
    let cases: [(&str, &str, &[&str]); 7] = [
        // The step is a block of the child's steps: what belongs on a
        // step that acts goes on those.
        (
            "    params: { db: x }\n    retry: { attempts: 3 }\n    restores_service: true\n",
            CHILD,
            &[
                "runbooks/parent.yaml:8:5: error: step `data`: `retry` has no place on a step that runs a child runbook: it belongs on the child's steps",
                "runbooks/parent.yaml:9:5: error: step `data`: `restores_service` has no place on a step that runs a child runbook: it belongs on the child's steps",
            ],
        ),
        (
            "    params: { db: x }\n    action: wait\n",
            CHILD,
            &[
                "runbooks/parent.yaml:6:14: error: step `data`: a step takes an `action` or a `runbook`, not both",
                "runbooks/parent.yaml:7:13: error: step `data`: `params` sets a child runbook's parameters: it goes with `runbook`; an action takes its inputs in `with`",
                "runbooks/parent.yaml:8:13: error: step `data`: missing field `duration`",
            ],
        ),
        // A run-time value cannot be a parameter.
        (
            "    params: { db: '${steps.other.outputs.id}' }\n",
            CHILD,
            &[
                "runbooks/parent.yaml:6:14: error: step `data`: the child runbook `child.yaml` needs its parameter `db` (it has no default): set it in `params`",
                "runbooks/parent.yaml:7:19: error: step `data`: `params.db`: `${steps.other.outputs.id}` is known only at run time, and a child's parameters are set when the runbook loads",
            ],
        ),
        // A problem in the child is reported in the child's file.
        (
            "",
            "name: c\nstrategy: pilot-light\nsteps:\n  - { id: a, action: rds.promote_replica }\n",
            &[
                "runbooks/parent.yaml:6:14: error: step `data`: the child runbook `child.yaml` does not load (its problems are reported in runbooks/child.yaml)",
                "runbooks/child.yaml:4:22: error: step `a`: unknown action `rds.promote_replica`, did you mean `rds.promote_read_replica`?",
            ],
        ),
        // One level deep.
        (
            "",
            "name: c\nstrategy: pilot-light\nsteps:\n  - { id: a, runbook: other.yaml }\n",
            &[
                "runbooks/parent.yaml:6:14: error: step `data`: the child runbook `child.yaml` does not load (its problems are reported in runbooks/child.yaml)",
                "runbooks/child.yaml:4:23: error: step `a`: a child runbook runs no child runbook of its own: children are one level deep",
            ],
        ),
        // The child's outputs are its steps'.
        (
            "    params: { db: x }\n  - id: after\n    action: notify\n    needs: [data]\n    with: { webhook: 'https://hooks.example/dr', message: '${steps.data.outputs.endpoint}' }\n",
            CHILD,
            &[
                "runbooks/parent.yaml:11:59: error: step `after`: `${steps.data.outputs.endpoint}`: `data` runs a child runbook, which has no outputs of its own; name one of its steps, `${steps.data.<its step>.outputs.<key>}`",
            ],
        ),
        // Two children that each name a recovery point: the parent decides.
        (
            "    params: { db: x }\n  - id: other\n    runbook: child.yaml\n    params: { db: y }\n",
            CHILD,
            &[
                "runbooks/parent.yaml: error: steps `data` and `other` run child runbooks with different `recovery_point`s: set the parent's own `recovery_point`",
            ],
        ),
    ];
    for (extra, child, expected) in cases {
        assert_eq!(problems(&step(extra), child), expected, "{extra}");
    }
    // A child not carried with the parent (named through a parameter, or
    // the parent's text loaded without reading it beside its file).
    assert_eq!(
        errors(&format!(
            "{HEAD}params:\n  which: {{ default: child.yaml }}\nsteps:\n  - id: data\n    runbook: ${{which}}\n"
        )),
        [
            "rb.yaml:8:14: error: step `data`: the child runbook `child.yaml` is not carried with this runbook: it is read beside this runbook's file when the runbook is, so name it as written (not through a parameter)"
        ]
    );
}

#[test]
fn a_child_acts_as_its_steps_role_unless_it_names_its_own_and_lends_its_drill_placement() {
    let child = |extra: &str| {
        format!(
            "name: c\nstrategy: pilot-light\n{extra}steps:\n  - {{ id: a, action: rds.wait_available, with: {{ db_instance: db }} }}\n  - {{ id: b, action: rds.wait_available, assume_role: {{ role_arn: 'arn:aws:iam::333333333333:role/own' }}, with: {{ db_instance: db }} }}\n"
        )
    };
    let parent = format!(
        "{HEAD}assume_role: {{ role_arn: 'arn:aws:iam::111111111111:role/parent' }}\nsteps:\n  - id: data\n    runbook: child.yaml\n    assume_role: {{ role_arn: 'arn:aws:iam::222222222222:role/step' }}\n"
    );
    let roles = |rb: &Runbook| -> Vec<String> {
        rb.steps
            .iter()
            .map(|s| {
                s.assume_role
                    .as_ref()
                    .map_or(String::new(), |r| r.role_arn.clone())
            })
            .collect()
    };
    let rb = loaded(&with_child(&parent, &child(""))).runbook;
    assert_eq!(
        roles(&rb),
        [
            "arn:aws:iam::222222222222:role/step",
            "arn:aws:iam::333333333333:role/own"
        ]
    );
    assert_eq!(
        rb.steps[0].region.as_deref(),
        Some("us-west-2"),
        "the parent's regions"
    );
    assert_eq!(rb.drill, DrillPlacement::default());
    let rb = loaded(&with_child(
        &parent,
        &child("assume_role: { role_arn: 'arn:aws:iam::444444444444:role/child' }\nregions: { from: eu-west-1, to: eu-central-1 }\ndrill: { subnets: [subnet-0a1b] }\n"),
    ))
    .runbook;
    assert_eq!(
        roles(&rb),
        [
            "arn:aws:iam::444444444444:role/child",
            "arn:aws:iam::333333333333:role/own"
        ]
    );
    assert_eq!(
        rb.steps[0].region.as_deref(),
        Some("eu-central-1"),
        "its own regions"
    );
    assert_eq!(
        rb.drill.subnets,
        ["subnet-0a1b"],
        "its drill placement, the parent naming none"
    );
}
