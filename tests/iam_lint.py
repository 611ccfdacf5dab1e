"""Lints IAM policy documents with Parliament: every finding, at every
severity, community auditors included, as one JSON line per finding
(`{"file", "issue", "severity", "detail"}`). Exits 1 when there is any."""
import json
import sys

from parliament import analyze_policy_string

found = 0
for path in sys.argv[1:]:
    with open(path) as f:
        policy = analyze_policy_string(f.read(), include_community_auditors=True)
    for finding in policy.findings:
        found += 1
        print(json.dumps({
            "file": path,
            "issue": finding.issue,
            "severity": finding.severity,
            "detail": str(finding.detail),
        }))
sys.exit(1 if found else 0)
