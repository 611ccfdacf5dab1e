"""Runs moto's server on 127.0.0.1:PORT for one test process.

Prints "ready" once the server listens, then waits for its standard input
to close: that happens when the test process ends, however it ends (even
SIGKILL), so no emulator outlives the tests that started it.

moto answers the JSON and query protocols of CloudWatch but not Smithy RPC
v2 CBOR, the protocol the current AWS SDK for Rust speaks to CloudWatch
(moto answers it with 404). `RpcV2Cbor` lets moto serve it: a request to
`/service/<Service>/operation/<Operation>` is decoded from CBOR and handed
to moto as the same operation in the JSON 1.0 protocol; moto's answer is
encoded back into CBOR along the operation's output shape in botocore's
model (timestamps as CBOR tag 1, blobs as byte strings), errors keep their
`__type`, message and `x-amzn-query-error` code. moto does all the work;
only the encoding is translated.

`ReplicaLag` plays the part of RDS that moto lacks: RDS publishes the
`AWS/RDS` `ReplicaLag` metric of every read replica each minute, moto
publishes nothing. Here every read replica moto holds gets a datapoint each
second (its lag: 0 s unless a test set another), in the replica's own
account and region. `POST /lifeboat-sim/replica-lag` with
`{"region", "db_instance", "lag_seconds"}` (and optionally `"account"`;
default every account) sets a replica's lag (`null` stops its datapoints,
as when RDS stops publishing); a reset forgets it.

Two more of AWS's behaviours moto lacks, patched into moto's own models:
CloudWatch evaluates a metric alarm when a datum of its metric arrives
(moto never changes an alarm's state), and a Route 53 health check of type
CLOUDWATCH_METRIC follows its alarm: moto forgets the `AlarmIdentifier` and
answers `GetHealthCheckStatus` with a fixed success. Here the alarm turns
ALARM or OK as the datum crosses its threshold, the health check keeps its
alarm, and its checkers report the alarm's state (INSUFFICIENT_DATA as its
`InsufficientDataHealthStatus` says; `Inverted` honoured). And Route 53
refuses a change batch that would leave a simple record beside routed
record sets (weighted, failover, ...) of the same name and type, with
`InvalidChangeBatch`, where moto accepts it; more of Route 53's rules at
`change_resource_record_sets` below.

An operation moto does not implement gets HTTP 400 `InvalidAction` saying
so, as AWS answers an operation it does not know, not moto's HTML page
with HTTP 500, which a client takes for a transient fault and retries.
"""
import base64
import datetime
import io
import json
import re
import sys
import threading

import cbor2
from botocore.loaders import create_loader
from botocore.model import ServiceModel
from moto.cloudwatch.models import CloudWatchBackend, cloudwatch_backends
from moto.core.responses import ActionResult, BaseResponse
from moto.core.utils import utcnow
from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.rds.models import rds_backends
from moto.route53.exceptions import InvalidInput, Route53ClientError
from moto.route53.models import FakeZone, HealthCheck, Route53Backend
from moto.route53.responses import Route53
from werkzeug.serving import make_server

# The services lifeboat calls whose SDK client speaks RPC v2 CBOR, by the
# service shape name in the request path.
CBOR_SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}

RPC_PATH = re.compile(r"^/service/(?P<service>[A-Za-z0-9_]+)/operation/(?P<operation>[A-Za-z0-9_]+)$")


class RpcV2Cbor:
    """WSGI middleware: Smithy RPC v2 CBOR outside, moto's JSON 1.0 inside."""

    def __init__(self, app):
        self.app = app
        self.loader = create_loader()
        self.models = {}

    def model(self, service_shape):
        """The botocore model of the service whose shape name (its JSON
        target prefix) is `service_shape`, or None."""
        name = CBOR_SERVICES.get(service_shape)
        if name is None:
            return None
        if name not in self.models:
            self.models[name] = ServiceModel(self.loader.load_service_model(name, "service-2"), name)
        return self.models[name]

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/lifeboat-sim/replica-lag" and environ.get("REQUEST_METHOD") == "POST":
            return REPLICA_LAG.set(environ, start_response)
        if path == "/moto-api/reset":
            REPLICA_LAG.forget()
        match = RPC_PATH.match(environ.get("PATH_INFO", ""))
        if not match or environ.get("HTTP_SMITHY_PROTOCOL") != "rpc-v2-cbor":
            return self.app(environ, start_response)
        service, operation = match.group("service"), match.group("operation")
        model = self.model(service)
        if model is None or operation not in model.operation_names:
            return self.answer(
                start_response,
                "404 Not Found",
                {"__type": "UnknownOperationException", "message": f"{service}.{operation}"},
                {},
            )
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        params = cbor2.loads(raw) if raw else {}
        body = json.dumps(to_json(params)).encode()
        inner = dict(environ)
        inner["PATH_INFO"] = "/"
        inner["QUERY_STRING"] = ""
        inner["CONTENT_TYPE"] = "application/x-amz-json-1.0"
        inner["CONTENT_LENGTH"] = str(len(body))
        inner["HTTP_X_AMZ_TARGET"] = f"{service}.{operation}"
        inner["wsgi.input"] = io.BytesIO(body)
        for key in ("HTTP_SMITHY_PROTOCOL", "HTTP_ACCEPT"):
            inner.pop(key, None)

        seen = {}

        def inner_start(status, headers, exc_info=None):
            seen["status"], seen["headers"] = status, headers
            return lambda _data: None

        chunks = self.app(inner, inner_start)
        try:
            text = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        status = seen.get("status", "500 Internal Server Error")
        kept = {
            k: v
            for k, v in seen.get("headers", [])
            if k.lower() in ("x-amzn-requestid", "x-amzn-query-error", "x-amz-request-id")
        }
        try:
            answer = json.loads(text) if text.strip() else {}
        except ValueError:
            answer = {"__type": "InternalFailure", "message": text.decode(errors="replace")[:500]}
        if status.startswith("2"):
            shape = model.operation_model(operation).output_shape
            answer = from_json(answer, shape) if shape is not None else {}
        else:
            answer = {k: v for k, v in answer.items() if k in ("__type", "message", "Message")}
        return self.answer(start_response, status, answer, kept)

    @staticmethod
    def answer(start_response, status, value, headers):
        body = cbor2.dumps(value, datetime_as_timestamp=True, timezone=datetime.timezone.utc)
        start_response(
            status,
            [
                ("Content-Type", "application/cbor"),
                ("smithy-protocol", "rpc-v2-cbor"),
                ("Content-Length", str(len(body))),
                *headers.items(),
            ],
        )
        return [body]


class ReplicaLag:
    """RDS's `ReplicaLag` datapoints, published into moto's CloudWatch."""

    def __init__(self):
        self.lock = threading.Lock()
        self.lags = {}

    def set(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            body = json.loads(environ["wsgi.input"].read(length))
            account = body.get("account")
            key = (None if account is None else str(account), str(body["region"]), str(body["db_instance"]))
            lag = body["lag_seconds"]
            lag = None if lag is None else float(lag)
        except (ValueError, KeyError, TypeError) as e:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [f"want {{region, db_instance, lag_seconds}}: {e}".encode()]
        with self.lock:
            self.lags[key] = lag
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def forget(self):
        with self.lock:
            self.lags.clear()

    def publish(self):
        """One datapoint for each read replica moto holds now."""
        for account, regions in list(dict.items(rds_backends)):
            for region, backend in list(dict.items(regions)):
                for db in list(backend.databases.values()):
                    if not getattr(db, "source_db_instance_identifier", None):
                        continue
                    name = db.db_instance_identifier
                    with self.lock:
                        lag = self.lags.get((account, region, name), self.lags.get((None, region, name), 0.0))
                    if lag is None:
                        continue
                    cloudwatch_backends[account][region].put_metric_data(
                        "AWS/RDS",
                        [
                            {
                                "MetricName": "ReplicaLag",
                                "Value": lag,
                                "Unit": "Seconds",
                                "Dimensions": [
                                    {"Name": "DBInstanceIdentifier", "Value": db.db_instance_identifier}
                                ],
                            }
                        ],
                    )

    def run(self, stop):
        while not stop.wait(1.0):
            try:
                self.publish()
            except Exception as e:  # a resource changing under us: next second
                print(f"replica lag: {e!r}", file=sys.stderr, flush=True)


REPLICA_LAG = ReplicaLag()


COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


def dimension_set(dimensions):
    out = set()
    for d in dimensions or []:
        if isinstance(d, dict):
            out.add((d.get("Name"), d.get("Value")))
        else:
            out.add((d.name, d.value))
    return out


def evaluating(put_metric_data):
    """CloudWatchBackend.put_metric_data, then the alarms on that metric
    (same namespace, name and dimensions) judged on the datum's value."""

    def put(self, namespace, metric_data):
        put_metric_data(self, namespace, metric_data)
        for datum in metric_data:
            if datum.get("Value") is None:
                continue
            value = float(datum["Value"])
            dims = dimension_set(datum.get("Dimensions"))
            for alarm in list(self.alarms.values()):
                compare = COMPARE.get(alarm.comparison_operator)
                if (
                    compare is None
                    or alarm.namespace != namespace
                    or alarm.metric_name != datum.get("MetricName")
                    or dimension_set(alarm.dimensions) != dims
                ):
                    continue
                state = "ALARM" if compare(value, float(alarm.threshold)) else "OK"
                if state != alarm.state_value:
                    alarm.update_state(
                        f"Threshold Crossed: datapoint [{value}] against threshold {alarm.threshold}",
                        "{}",
                        state,
                    )

    return put


CloudWatchBackend.put_metric_data = evaluating(CloudWatchBackend.put_metric_data)

_health_check_config = HealthCheck.health_check_config.fget


def health_check_config(self):
    config = _health_check_config(self)
    if getattr(self, "alarm_identifier", None):
        config["AlarmIdentifier"] = self.alarm_identifier
        config["InsufficientDataHealthStatus"] = self.insufficient_data_health_status
        for key in ("IPAddress", "Port", "RequestInterval", "FailureThreshold", "MeasureLatency"):
            config.pop(key, None)
    return config


HealthCheck.health_check_config = property(health_check_config)

_create_health_check = Route53.create_health_check


def create_health_check(self):
    config = self._get_param("HealthCheckConfig") or {}
    caller_reference = self._get_param("CallerReference")
    result = _create_health_check(self)
    if config.get("Type") == "CLOUDWATCH_METRIC":
        for check in self.backend.health_checks.values():
            if check.caller_reference == caller_reference:
                check.alarm_identifier = config.get("AlarmIdentifier")
                check.insufficient_data_health_status = (
                    config.get("InsufficientDataHealthStatus") or "LastKnownStatus"
                )
    return result


Route53.create_health_check = create_health_check

_get_health_check_status = Route53.get_health_check_status
CHECKERS = ["us-east-1", "us-west-1", "us-west-2", "eu-west-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "sa-east-1"]


def get_health_check_status(self):
    check = self.backend.get_health_check(self._get_param("HealthCheckId"))
    alarm_id = getattr(check, "alarm_identifier", None)
    if not alarm_id:
        return _get_health_check_status(self)
    name, region = alarm_id.get("Name"), alarm_id.get("Region")
    alarm = cloudwatch_backends[self.current_account][region].alarms.get(name)
    state = alarm.state_value if alarm else "INSUFFICIENT_DATA"
    if state == "INSUFFICIENT_DATA":
        healthy = check.insufficient_data_health_status != "Unhealthy"
    else:
        healthy = state == "OK"
    if check.inverted:
        healthy = not healthy
    status = (
        f"Success: CloudWatch alarm {name} in {region} is {state}"
        if healthy
        else f"Failure: CloudWatch alarm {name} in {region} is {state}"
    )
    observations = [
        {"Region": r, "IPAddress": "127.0.13.37", "StatusReport": {"Status": status, "CheckedTime": utcnow()}}
        for r in CHECKERS
    ]
    return ActionResult({"HealthCheckObservations": observations})


Route53.get_health_check_status = get_health_check_status


_change_resource_record_sets = Route53Backend.change_resource_record_sets


def fqdn(name):
    return name.rstrip(".").lower() + "."


def routing_of(rr):
    """The routing policy of a record set, from moto's model or a change."""
    get = rr.get if isinstance(rr, dict) else lambda k: getattr(rr, ROUTING_ATTRS[k], None)
    for key, policy in (
        ("Weight", "weighted"),
        ("Region", "latency"),
        ("Failover", "failover"),
        ("GeoLocation", "geolocation"),
        ("MultiValueAnswer", "multivalue"),
    ):
        if get(key) is not None:
            return policy
    return None


ROUTING_ATTRS = {
    "Weight": "weight",
    "Region": "region",
    "Failover": "failover",
    "GeoLocation": "geo_location",
    "MultiValueAnswer": "multi_value_answer",
}


def rr_type(rr):
    return rr.type_ if hasattr(rr, "type_") else rr.type


def invalid_batch(message):
    return Route53ClientError("InvalidChangeBatch", f"[{message}]")


def change_resource_record_sets(self, zoneid, change_list):
    """Route 53's rules moto lacks, judged on the zone as the batch would
    leave it: a name and type hold either one simple record set or routed
    ones (each with a SetIdentifier), never both, and routed ones share one
    routing policy; a change gives an alias target or a TTL with values,
    never both; an alias to a record of this zone needs that record."""
    zone = self.get_hosted_zone(zoneid)
    sets = {
        (fqdn(r.name), rr_type(r), r.set_identifier): routing_of(r) for r in zone.rrsets
    }
    for change in change_list:
        rr = change["ResourceRecordSet"]
        key = (fqdn(rr["Name"]), rr["Type"], rr.get("SetIdentifier"))
        if change["Action"] == "DELETE":
            sets.pop(key, None)
            continue
        if rr.get("AliasTarget") is not None and (
            rr.get("TTL") is not None or rr.get("ResourceRecords")
        ):
            raise InvalidInput(
                "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and "
                "ResourceRecords], or TrafficPolicyInstanceId], but found more than one in "
                f"Change with [Action={change['Action']}, Name={rr['Name']}, Type={rr['Type']}, "
                f"SetIdentifier={rr.get('SetIdentifier', 'null')}]"
            )
        sets[key] = routing_of(rr)
    for (name, kind, set_id), policy in sets.items():
        routed = [
            (i, p) for (n, k, i), p in sets.items() if n == name and k == kind and i is not None
        ]
        if set_id is None and routed:
            raise invalid_batch(
                f"RRSet with DNS name {name}, type {kind} cannot be created as other RRSets exist "
                f"with the same name and type, with a set identifier (weighted, latency, failover, ...)"
            )
        for other, other_policy in routed:
            if set_id is not None and other_policy != policy:
                raise invalid_batch(
                    f"RRSet with DNS name {name}, type {kind}, SetIdentifier {set_id} cannot be "
                    f"created because a non-{policy or 'routed'} set exists with the same name and "
                    f"type (SetIdentifier {other})"
                )
    own_zone = zone.id.split("/")[-1]
    for change in change_list:
        rr = change["ResourceRecordSet"]
        alias = rr.get("AliasTarget")
        if change["Action"] == "DELETE" or not alias:
            continue
        if str(alias.get("HostedZoneId", "")).split("/")[-1] != own_zone:
            continue
        target = fqdn(alias.get("DNSName", ""))
        if not any(n == target and k == rr["Type"] for n, k, _ in sets):
            raise invalid_batch(
                f"Tried to create an alias that targets {target}, type {rr['Type']} in zone "
                f"{own_zone}, but that target was not found"
            )
    # moto deletes every set of a name and type when a DELETE has no set
    # identifier, and every set with that identifier in the zone, whatever
    # its name, when it has one; Route 53 deletes the one set named.
    zone._lifeboat_deletes = [
        (fqdn(c["ResourceRecordSet"]["Name"]), c["ResourceRecordSet"]["Type"])
        for c in change_list
        if c["Action"] == "DELETE" and "SetIdentifier" in c["ResourceRecordSet"]
    ]
    return _change_resource_record_sets(self, zoneid, change_list)


def delete_one_rrset(self, rrset):
    name, kind = fqdn(rrset["Name"]), rrset.get("Type")
    self.rrsets = [
        r
        for r in self.rrsets
        if not (fqdn(r.name) == name and rr_type(r) == kind and r.set_identifier is None)
    ]


def delete_one_routed_rrset(self, set_identifier):
    name, kind = self._lifeboat_deletes.pop(0)
    self.rrsets = [
        r
        for r in self.rrsets
        if not (
            fqdn(r.name) == name and rr_type(r) == kind and r.set_identifier == set_identifier
        )
    ]


Route53Backend.change_resource_record_sets = change_resource_record_sets
FakeZone.delete_rrset = delete_one_rrset
FakeZone.delete_rrset_by_id = delete_one_routed_rrset


def to_json(value):
    """A decoded CBOR request as the JSON protocol has it: timestamps as
    epoch seconds, blobs as base64."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    return value


def from_json(value, shape):
    """moto's JSON answer as CBOR wants it, along the output shape."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            if name in value:
                out[name] = from_json(value[name], member)
        return out
    if kind == "list":
        return [from_json(v, shape.member) for v in value]
    if kind == "map":
        return {k: from_json(v, shape.value) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, (int, float)):
            return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if kind == "blob":
        return base64.b64decode(value)
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long", "short", "byte"):
        return int(value)
    return value


_call_action = BaseResponse.call_action


def call_action(self):
    """moto answers an operation it does not implement with an HTML page
    and HTTP 500, which an AWS client takes for a transient fault and
    retries. Answer as AWS answers an operation it does not know: HTTP 400
    `InvalidAction`, saying that the emulator lacks it."""
    try:
        return _call_action(self)
    except NotImplementedError as e:
        if "has not been implemented" not in str(e):
            raise
        action = self._get_action()
        message = f"The emulator (moto) does not implement {action}"
        if "moto.ec2." in type(self).__module__:
            body = (
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error>"
                f"<Code>InvalidAction</Code><Message>{message}</Message></Error></Errors>"
                "<RequestID>emulator</RequestID></Response>"
            )
        else:
            body = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code>"
                f"<Message>{message}</Message></Error><RequestId>emulator</RequestId></ErrorResponse>"
            )
        return 400, {"Content-Type": "text/xml"}, body


BaseResponse.call_action = call_action


server = make_server(
    "127.0.0.1",
    int(sys.argv[1]),
    RpcV2Cbor(DomainDispatcherApplication(create_backend_app)),
    True,
    request_handler=MotoRequestHandler,
)
print("ready", flush=True)
stopping = threading.Event()
threading.Thread(target=server.serve_forever, daemon=True).start()
threading.Thread(target=REPLICA_LAG.run, args=(stopping,), daemon=True).start()
sys.stdin.read()
stopping.set()
server.shutdown()
