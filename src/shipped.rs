//! The strategy runbooks in `runbooks/`, embedded so the binary can show
//! them (the demo) without the source tree.

/// (file name, text) of each shipped runbook.
pub const RUNBOOKS: &[(&str, &str)] = &[
    (
        "backup-restore.yaml",
        include_str!("../runbooks/backup-restore.yaml"),
    ),
    (
        "pilot-light.yaml",
        include_str!("../runbooks/pilot-light.yaml"),
    ),
    (
        "warm-standby.yaml",
        include_str!("../runbooks/warm-standby.yaml"),
    ),
    (
        "active-passive.yaml",
        include_str!("../runbooks/active-passive.yaml"),
    ),
    ("failback.yaml", include_str!("../runbooks/failback.yaml")),
    (
        "active-active.yaml",
        include_str!("../runbooks/active-active.yaml"),
    ),
    (
        "failback-active-passive.yaml",
        include_str!("../runbooks/failback-active-passive.yaml"),
    ),
    (
        "failback-active-active.yaml",
        include_str!("../runbooks/failback-active-active.yaml"),
    ),
    (
        "active-active-three-regions.yaml",
        include_str!("../runbooks/active-active-three-regions.yaml"),
    ),
    ("multi-az.yaml", include_str!("../runbooks/multi-az.yaml")),
    (
        "failback-multi-az.yaml",
        include_str!("../runbooks/failback-multi-az.yaml"),
    ),
];
