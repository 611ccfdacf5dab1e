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
`AWS/RDS` `ReplicaLag` metric of every read replica each minute (and
`AuroraGlobalDBRPOLag`, in milliseconds, of each secondary cluster of an
Aurora global database, here named as `db_instance` when set), moto
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
`change_resource_record_sets` below. A promoted RDS read replica stops
naming its source, and its source stops naming it, as in RDS (moto keeps
both; `promote_read_replica` below). A reboot with failover moves a
Multi-AZ instance's primary to its standby's zone and is refused for an
instance that is not Multi-AZ (moto ignores `ForceFailover`;
`reboot_db_instance_response` below).

Lambda functions' code is played by `Functions` (moto's Lambda without
Docker answers the protocol; the test says what a function returns, raises
and logs, and reads back the invocations it saw).

An operation moto does not implement, and every request to a service it
has no backend for (ARC zonal shift), gets HTTP 400 `InvalidAction` saying
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
import urllib.parse

import cbor2
from botocore.loaders import create_loader
from botocore.model import ServiceModel
from moto.cloudwatch.models import CloudWatchBackend, cloudwatch_backends
from moto.core.responses import ActionResult, BaseResponse
from moto.core.utils import utcnow
from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.autoscaling.models import autoscaling_backends
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.config import default_user_config
from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends
from moto.rds.exceptions import RDSClientError
from moto.rds.models import DBInstance, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse
from moto.sts.models import sts_backends
from moto.route53.exceptions import InvalidInput, Route53ClientError
from moto.route53.models import FakeZone, HealthCheck, Route53Backend
from moto.route53.responses import Route53
from werkzeug.serving import make_server

# The services lifeboat calls whose SDK client speaks RPC v2 CBOR, by the
# service shape name in the request path.
CBOR_SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}

# Services lifeboat calls that moto has no backend for, by their SigV4
# signing name.
UNEMULATED = {"arc-zonal-shift": "ARC zonal shift"}


def signed_service(environ):
    """The service a request is signed for (its SigV4 scope), or None."""
    found = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return found.group(1) if found else None


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
        if path == "/lifeboat-sim/iam":
            return IAM.handle(environ, start_response)
        if path == "/lifeboat-sim/lambda":
            return FUNCTIONS.handle(environ, start_response)
        if path == "/moto-api/reset":
            REPLICA_LAG.forget()
            IAM.forget()
            FUNCTIONS.forget()
        if IAM.access_key:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(raw)
            try:
                refused = IAM.check(environ, raw)
            except Exception as e:  # the model failing denies, and says why
                IAM.denied.append({"principal": "?", "action": "?", "resource": "?",
                                   "reason": f"the emulator's IAM model failed: {type(e).__name__}: {e}"})
                body = f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>IAM model failed: {e}</Message></Error></ErrorResponse>".encode()
                refused = ("403 Forbidden", "text/xml", body, {})
            if refused is not None:
                status, content_type, body, headers = refused
                start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *headers.items()])
                return [body]
        unemulated = signed_service(environ)
        if unemulated in UNEMULATED:
            return self.lacking(environ, start_response, unemulated)
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
    def lacking(environ, start_response, service):
        """A service moto has no backend for, answered as AWS answers an
        operation it does not know (HTTP 400, the REST JSON protocols'
        error type header), not with moto's HTTP 500 crash page, which a
        client takes for a transient fault and retries."""
        query = environ.get("QUERY_STRING")
        what = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}{'?' + query if query else ''}"
        body = json.dumps({
            "message": f"The emulator (moto) does not implement {UNEMULATED[service]} ({what})",
        }).encode()
        start_response("400 Bad Request", [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", "InvalidAction"),
            ("x-amzn-RequestId", "emulator"),
            ("Content-Length", str(len(body))),
        ])
        return [body]

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

    def lag_of(self, account, region, name):
        with self.lock:
            return self.lags.get((account, region, name), self.lags.get((None, region, name), 0.0))

    @staticmethod
    def put(account, region, metric, dimension, name, value, unit):
        cloudwatch_backends[account][region].put_metric_data(
            "AWS/RDS",
            [{"MetricName": metric, "Value": value, "Unit": unit,
              "Dimensions": [{"Name": dimension, "Value": name}]}],
        )

    def publish(self):
        """One datapoint for each read replica moto holds now, and for each
        secondary cluster of a global database (RDS's AuroraGlobalDBRPOLag,
        in milliseconds)."""
        for account, regions in list(dict.items(rds_backends)):
            for region, backend in list(dict.items(regions)):
                for db in list(backend.databases.values()):
                    if not getattr(db, "source_db_instance_identifier", None):
                        continue
                    name = db.db_instance_identifier
                    lag = self.lag_of(account, region, name)
                    if lag is not None:
                        self.put(account, region, "ReplicaLag", "DBInstanceIdentifier", name, lag, "Seconds")
                for cluster in list(backend.clusters.values()):
                    if not getattr(cluster, "global_cluster_identifier", None) or getattr(cluster, "is_writer", True):
                        continue
                    name = cluster.db_cluster_identifier
                    lag = self.lag_of(account, region, name)
                    if lag is not None:
                        self.put(account, region, "AuroraGlobalDBRPOLag", "DBClusterIdentifier", name,
                                 lag * 1000.0, "Milliseconds")

    def run(self, stop):
        while not stop.wait(1.0):
            try:
                self.publish()
            except Exception as e:  # a resource changing under us: next second
                print(f"replica lag: {e!r}", file=sys.stderr, flush=True)


REPLICA_LAG = ReplicaLag()


class Functions:
    """The code of Lambda functions, which the emulator does not run (no
    container runtime here): moto's own Lambda without Docker answers every
    invocation, with the Lambda protocol, and this plays what the function
    does. `POST /lifeboat-sim/lambda` with `{"region", "function",
    "result"}` (JSON, what the function returns) and optionally
    `"function_error"` (`Unhandled`: the function raised, and `result` is
    its error payload) and `"log"` sets what the next invocations of that
    function return; a function given nothing echoes its event (moto's own
    simple behaviour). `GET /lifeboat-sim/lambda` lists the invocations
    seen (function, qualifier, event, client context), oldest first."""

    def __init__(self):
        self.lock = threading.Lock()
        self.behaviours = {}
        self.seen = []

    def handle(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "GET":
            with self.lock:
                body = json.dumps(self.seen).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        try:
            body = json.loads(environ["wsgi.input"].read(length))
            key = (str(body["region"]), str(body["function"]))
            behaviour = (body["result"], body.get("function_error"), body.get("log", ""))
        except (ValueError, KeyError, TypeError) as e:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [f"want {{region, function, result}}: {e}".encode()]
        with self.lock:
            self.behaviours[key] = behaviour
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def forget(self):
        with self.lock:
            self.behaviours.clear()
            self.seen.clear()

    def invoke(self, backend, function_name, qualifier, body, headers, response_headers):
        fn = backend.get_function(function_name, qualifier)
        name = fn.function_name
        context = headers.get("X-Amz-Client-Context") or headers.get("x-amz-client-context")
        with self.lock:
            self.seen.append({
                "function": name,
                "qualifier": qualifier,
                "event": json.loads(body) if body else None,
                "client_context": json.loads(base64.b64decode(context)) if context else None,
            })
            behaviour = self.behaviours.get((backend.region_name, name))
        if behaviour is None:
            payload = (body or "{}").encode() if isinstance(body or "{}", str) else body
        else:
            result, function_error, log = behaviour
            payload = json.dumps(result).encode()
            if function_error:
                response_headers["x-amz-function-error"] = function_error
            if log:
                response_headers["x-amz-log-result"] = base64.b64encode(log.encode()).decode()
        response_headers["x-amz-executed-version"] = getattr(fn, "version", "$LATEST")
        return payload


FUNCTIONS = Functions()
# No container runtime: moto's Lambda answers without running the code, and
# `Functions` plays the code.
default_user_config["lambda"]["use_docker"] = False


def simple_invoke(self, function_name, qualifier, body, headers, response_headers):
    return FUNCTIONS.invoke(self, function_name, qualifier, body, headers, response_headers)


LambdaSimpleBackend.invoke = simple_invoke


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


_promote_read_replica = RDSBackend.promote_read_replica


def promote_read_replica(self, db_kwargs):
    """RDS's promotion: the instance is a replica no more, so it no longer
    names its source (`ReadReplicaSourceDBInstanceIdentifier`) nor its
    source it; moto keeps both. A promotion of an instance that is not a
    read replica is refused, as RDS refuses it; moto does nothing and
    answers success."""
    database = self.databases.get(db_kwargs["db_instance_identifier"])
    if database is not None and not database.is_replica:
        raise RDSClientError("InvalidDBInstanceState", "DB Instance is not a read replica.")
    source = getattr(database, "source_db_instance_identifier", None)
    promoted = _promote_read_replica(self, db_kwargs)
    if source:
        try:
            primary = self.find_db_from_id(source)
        except RDSClientError:
            primary = None
        if primary is not None:
            for name in (promoted.db_instance_identifier, promoted.db_instance_arn):
                if name in primary.replicas:
                    primary.replicas.remove(name)
        promoted.source_db_instance_identifier = None
    return promoted


RDSBackend.promote_read_replica = promote_read_replica


def other_zone(region, zone):
    """A zone of `region` other than `zone`: where RDS keeps a Multi-AZ
    instance's standby."""
    return f"{region}b" if zone == f"{region}a" else f"{region}a"


def secondary_availability_zone(self):
    """RDS names the zone of a Multi-AZ instance's standby
    (`SecondaryAvailabilityZone`); moto keeps no standby."""
    if not self.multi_az:
        return None
    return self.__dict__.get("_standby_zone") or other_zone(self.region, self.availability_zone)


DBInstance.secondary_availability_zone = property(secondary_availability_zone)


def reboot_db_instance_response(self):
    """RDS's reboot with failover (`ForceFailover`): refused for an instance
    that is not Multi-AZ (`InvalidParameterCombination`) or not available
    (`InvalidDBInstanceState`); otherwise the standby becomes the primary,
    so the instance's zone and its standby's swap. moto drops the parameter
    and changes nothing. RDS's `rebooting` while it runs is the simulation
    proxy's to play (a transition after `RebootDBInstance`)."""
    identifier = self.params.get("DBInstanceIdentifier")
    force = str(self.params.get("ForceFailover", "false")).lower() == "true"
    database = self.backend.describe_db_instances(identifier)[0]
    if database.status != "available":
        raise RDSClientError("InvalidDBInstanceState", f"Instance {identifier} is not in available state.")
    if force:
        if not database.multi_az:
            raise RDSClientError(
                "InvalidParameterCombination",
                "Cannot force a failover on an instance that is not Multi-AZ.",
            )
        primary, standby = database.availability_zone, database.secondary_availability_zone
        database.availability_zone = standby
        database._standby_zone = primary
    return ActionResult({"DBInstance": database})


RDSResponse.reboot_db_instance = reboot_db_instance_response


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



class Iam:
    """Plays IAM's part, which moto does not (it accepts every request):
    with policies installed (`POST /lifeboat-sim/iam`, `{"access_key",
    "policies": {"caller": DOC, ROLE_ARN: DOC}, "trust": {ROLE_ARN: DOC}}`,
    trust optional: then `sts:AssumeRole` must also pass the role's trust
    policy, for the caller GetCallerIdentity names), every request signed with
    that access key (the caller) or with credentials assumed from it (a
    role, by ARN) is authorized as AWS authorizes it: the IAM action, each
    resource the Service Authorization Reference lists for it, and the
    request context (region, tags of the resources, tags in the request,
    Route 53's record names, types and change actions). A request not
    allowed, or explicitly denied, is answered as AWS answers it (HTTP 403,
    `UnauthorizedOperation` from EC2, `AccessDenied` elsewhere) and logged;
    `GET /lifeboat-sim/iam` gives `{"checked", "denied": [...]}`. An
    operation this model does not know is denied and says so, so a new
    call cannot slip past it. Other access keys (a test's own set-up) are
    not checked. What IAM evaluates beyond this (service-linked calls RDS
    makes to KMS, permission boundaries, SCPs) is not modelled."""

    def __init__(self):
        self.lock = threading.Lock()
        self.access_key = None
        self.policies = {}
        self.trust = {}
        self.caller_arn = None
        self.exempt = set()
        self.checked = 0
        self.denied = []

    def handle(self, environ, start_response):
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            with self.lock:
                self.access_key = body.get("access_key")
                self.policies = body.get("policies") or {}
                self.trust = body.get("trust") or {}
                # Who the emulator says the caller is (GetCallerIdentity).
                self.caller_arn = sts_backends[DEFAULT_ACCOUNT_ID]["aws"].get_caller_identity(
                    self.access_key or "", "us-east-1")[1]
                # Roles assumed before now are the harness's own.
                self.exempt = {r.access_key_id for r in assumed_roles()}
                self.checked = 0
                self.denied = []
            answer = {"ok": True}
        else:
            with self.lock:
                answer = {"checked": self.checked, "denied": list(self.denied)}
        data = json.dumps(answer).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def forget(self):
        with self.lock:
            self.access_key = None
            self.policies = {}

    def trusted(self, name, role_arn, external_id):
        """None when `role_arn`'s trust policy lets this principal assume
        it with `external_id`; else why not. The caller is known by
        `caller_arn`; a principal of an account's root trusts all of it."""
        trust = self.trust.get(role_arn)
        if trust is None:
            return f"no trust policy for {role_arn}"
        who = self.caller_arn if name == "caller" else name
        account = (who or "").split(":")[4] if (who or "").count(":") >= 4 else ""
        context = {} if external_id is None else {"sts:externalid": external_id}
        for statement in as_list(trust.get("Statement", [])):
            principals = as_list((statement.get("Principal") or {}).get("AWS", []))
            names = any(p == who or p == f"arn:aws:iam::{account}:root" for p in principals)
            if statement.get("Effect") != "Allow" or not names:
                continue
            if not any(glob(a, "sts:AssumeRole", case=False) for a in as_list(statement.get("Action", []))):
                continue
            if all(condition_holds(op, key, wanted, context)
                   for op, keys in statement.get("Condition", {}).items() for key, wanted in keys.items()):
                return None
        return f"the trust policy of {role_arn} does not let {who} assume it (external id {external_id!r})"

    # The principal and its policy.

    def principal(self, access_key):
        """`(name, account, policy)` of whoever signed with `access_key`,
        or None when it is not checked."""
        if not self.access_key:
            return None
        if access_key == self.access_key:
            return ("caller", DEFAULT_ACCOUNT_ID, self.policies.get("caller"))
        if access_key in self.exempt:
            return None
        for role in assumed_roles():
            if role.access_key_id == access_key:
                return (role.role_arn, role.role_arn.split(":")[4], self.policies.get(role.role_arn))
        return None

    def check(self, environ, raw):
        """None when the request may go on; else the WSGI answer."""
        auth = environ.get("HTTP_AUTHORIZATION", "")
        match = re.search(r"Credential=([^/]+)/\d+/([^/]+)/([^/]+)/", auth)
        if not match:
            return None
        access_key, region, service = match.groups()
        who = self.principal(access_key)
        if who is None:
            return None
        name, account, policy = who
        request = Request(environ, raw, region, service, account)
        checks = authorizations(request)
        for presigned in request.presigned():
            checks.extend(authorizations(presigned))
        for action, arn, context in checks:
            reason = evaluate(policy, action, arn, context)
            if reason is None and action == "sts:AssumeRole" and self.trust:
                reason = self.trusted(name, arn, request.params.get("ExternalId"))
            with self.lock:
                self.checked += 1
                if reason is not None:
                    self.denied.append({
                        "principal": name, "action": action, "resource": arn, "reason": reason,
                    })
            if reason is not None:
                return request.deny(name, action, arn)
        return None


def assumed_roles():
    return [role for account in list(sts_backends.values()) for backend in list(account.values())
            for role in list(backend.assumed_roles)]


IAM = Iam()
DEFAULT_ACCOUNT_ID = "123456789012"


class Request:
    """One AWS request as IAM sees it: service, operation, parameters."""

    def __init__(self, environ, raw, region, service, account, params=None, operation=None, replay=False):
        self.replay = replay
        self.environ = environ
        self.region = region
        self.service = service
        self.account = account
        self.method = environ.get("REQUEST_METHOD", "GET")
        self.path = environ.get("PATH_INFO", "")
        self.query = {k: v[-1] for k, v in urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        self.raw = raw
        self.params = params
        self.operation = operation
        if params is None:
            self.params = {}
            content_type = environ.get("CONTENT_TYPE", "")
            match = RPC_PATH.match(self.path)
            if match and environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
                self.operation = match.group("operation")
                self.params = cbor2.loads(raw) if raw else {}
            elif "x-www-form-urlencoded" in content_type or (raw and service in ("ec2", "rds", "autoscaling", "sts") and b"Action=" in raw):
                form = urllib.parse.parse_qs(raw.decode(), keep_blank_values=True)
                self.params = {k: v[-1] for k, v in form.items()}
                self.operation = self.params.get("Action")
            elif self.query.get("Action"):
                self.params = dict(self.query)
                self.operation = self.query["Action"]
            elif environ.get("HTTP_X_AMZ_TARGET"):
                # JSON 1.x protocols (ECS): the operation after the dot.
                self.operation = environ["HTTP_X_AMZ_TARGET"].rsplit(".", 1)[-1]
                try:
                    self.params = json.loads(raw) if raw else {}
                except ValueError:
                    self.params = {}
            elif service == "lambda":
                found = re.match(r"^/2015-03-31/functions/([^/]+)/invocations$", self.path)
                if found and self.method == "POST":
                    self.operation = "Invoke"
                    self.params = {"FunctionName": urllib.parse.unquote(found.group(1)),
                                   "Qualifier": self.query.get("Qualifier")}

    def values(self, prefix):
        """The members of a flattened query list (`Prefix.1`, `Prefix.2`...)."""
        found = []
        for key, value in self.params.items():
            rest = key[len(prefix):] if key.startswith(prefix + ".") else None
            if rest is not None and rest[1:].isdigit():
                found.append((int(rest[1:]), value))
        return [v for _, v in sorted(found)]

    def tags(self):
        """Tags the request puts on what it creates or tags: EC2's
        `TagSpecification.N.Tag.M`, `Tag.N`; RDS's `Tags.Tag.N` / `Tags.member.N`."""
        tags = {}
        for key, value in self.params.items():
            m = re.match(r"^(?:TagSpecification\.\d+\.)?(?:Tags?\.(?:Tag\.|member\.)?)(\d+)\.Key$", key)
            if m:
                tags[value] = self.params.get(key[: -len("Key")] + "Value", "")
        return tags

    def tagged_types(self):
        return {v for k, v in self.params.items() if re.match(r"^TagSpecification\.\d+\.ResourceType$", k)}

    def presigned(self):
        """The request RDS replays in the source region from `PreSignedUrl`."""
        url = self.params.get("PreSignedUrl")
        if not url:
            return []
        parsed = urllib.parse.urlparse(url)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
        credential = query.get("X-Amz-Credential", "").split("/")
        region = credential[2] if len(credential) > 2 else self.region
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": ""}
        return [Request(environ, b"", region, "rds", self.account, params=query, operation=query.get("Action"), replay=True)]

    def deny(self, who, action, arn):
        message = f"User: {who} is not authorized to perform: {action} on resource: {arn}"
        if self.service == "ec2":
            body = (
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>UnauthorizedOperation</Code>"
                f"<Message>You are not authorized to perform this operation. {message}</Message></Error></Errors>"
                "<RequestID>iam</RequestID></Response>"
            )
            return "403 Forbidden", "text/xml", body.encode(), {}
        if self.service == "monitoring" and RPC_PATH.match(self.path):
            body = cbor2.dumps({"__type": "AccessDenied", "message": message})
            return "403 Forbidden", "application/cbor", body, {"smithy-protocol": "rpc-v2-cbor", "x-amzn-query-error": "AccessDenied;Sender"}
        if self.service == "s3":
            body = f"<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>"
            return "403 Forbidden", "application/xml", body.encode(), {}
        namespace = ' xmlns="https://route53.amazonaws.com/doc/2013-04-01/"' if self.service == "route53" else ""
        body = (
            f"<ErrorResponse{namespace}><Error><Type>Sender</Type><Code>AccessDenied</Code>"
            f"<Message>{message}</Message></Error><RequestId>iam</RequestId></ErrorResponse>"
        )
        return "403 Forbidden", "text/xml", body.encode(), {}


def ec2_tags(request, region, resource_id):
    return dict(ec2_backends[request.account][region].tags.get(resource_id, {}))


def rds_resource(request, region, kind, name):
    """The ARN and tags of an RDS resource named by id or ARN."""
    if name.startswith("arn:"):
        arn = name
        region = name.split(":")[3]
        name = name.split(":")[-1]
    else:
        arn = f"arn:aws:rds:{region}:{request.account}:{kind}:{name}"
    tags = {}
    backend = rds_backends[request.account][region]
    store = {"db": backend.databases, "snapshot": backend.database_snapshots,
             "cluster": backend.clusters}.get(kind, {})
    if name in store:
        tags = {t["Key"]: t["Value"] for t in store[name].tags or []}
    return arn, tags


def created(arn, request):
    return (arn, {"tags": {}, "request_tags": request.tags()})


def existing(arn, tags):
    return (arn, {"tags": tags, "request_tags": None})


def ec2_arn(request, kind, resource_id, region=None):
    region = region or request.region
    account = "" if kind in ("image", "snapshot") else request.account
    return f"arn:aws:ec2:{region}:{account}:{kind}/{resource_id}"


EC2_PREFIXES = {"i": "instance", "ami": "image", "snap": "snapshot", "vol": "volume", "eni": "network-interface",
                "sg": "security-group", "subnet": "subnet", "lt": "launch-template"}


def authorizations(request):
    """`(iam_action, resource_arn, context)` for each check IAM makes."""
    service = request.service
    op = request.operation
    if service == "route53":
        op, touched = route53_request(request)
    elif service == "s3":
        op, touched = s3_request(request)
    elif op is None:
        return [("unknown", "*", {"reason": f"no operation recognised in {request.method} {request.path}"})]
    else:
        handler = {"ec2": ec2_request, "rds": rds_request, "autoscaling": autoscaling_request,
                   "monitoring": cloudwatch_request, "sts": sts_request, "ecs": ecs_request,
                   "lambda": lambda_request}.get(service)
        touched = handler(request, op) if handler else None
    prefix = {"monitoring": "cloudwatch"}.get(service, service)
    if touched is None:
        return [(f"{prefix}:{op}", "*", {"reason": f"the emulator's IAM model does not know {prefix}:{op}"})]
    checks = []
    for action, arn, context in touched:
        context = dict(context)
        context.setdefault("aws:requestedregion", request.region)
        checks.append((action if ":" in action else f"{prefix}:{action}", arn, context))
    return checks


def with_tags(action, resource, extra=None):
    """One check of `action` on `resource` (`(arn, {tags, request_tags})`)."""
    arn, tags = resource
    context = {}
    for k, v in (tags.get("tags") or {}).items():
        context[f"aws:resourcetag/{k.lower()}"] = v
    if tags.get("request_tags") is not None:
        for k, v in tags["request_tags"].items():
            context[f"aws:requesttag/{k.lower()}"] = v
        context["aws:tagkeys"] = list(tags["request_tags"])
    context.update(extra or {})
    return (action, arn, context)


def ec2_request(request, op):
    r = request.region
    star = [(op, "*", {})]
    if op == "DescribeInstanceAttribute":
        i = request.params.get("InstanceId", "")
        return [with_tags(op, existing(ec2_arn(request, "instance", i), ec2_tags(request, r, i)))]
    if op.startswith("Describe"):
        return star
    if op == "DeleteVolume":
        v = request.params.get("VolumeId", "")
        return [with_tags(op, existing(ec2_arn(request, "volume", v), ec2_tags(request, r, v)))]
    if op in ("StartInstances", "StopInstances", "TerminateInstances", "ModifyInstanceAttribute"):
        ids = request.values("InstanceId") or [request.params.get("InstanceId")]
        return [with_tags(op, existing(ec2_arn(request, "instance", i), ec2_tags(request, r, i))) for i in ids if i]
    if op == "RunInstances":
        checks = []
        tagged = request.tagged_types()
        for kind in ("instance", "volume", "network-interface"):
            checks.append(with_tags(op, created(ec2_arn(request, kind, "*"), request)))
        backend = ec2_backends[request.account][r]
        template = None
        template_id = request.params.get("LaunchTemplate.LaunchTemplateId")
        template_name = request.params.get("LaunchTemplate.LaunchTemplateName")
        for t in backend.launch_templates.values():
            if t.id == template_id or (template_name and t.name == template_name):
                template = t
        data = template.latest_version().data if template else {}
        if template:
            checks.append(with_tags(op, existing(ec2_arn(request, "launch-template", template.id), ec2_tags(request, r, template.id))))
        image = request.params.get("ImageId") or data.get("ImageId")
        if image:
            checks.append(with_tags(op, existing(ec2_arn(request, "image", image), ec2_tags(request, r, image))))
        subnet = request.params.get("SubnetId") or data.get("SubnetId")
        checks.append(with_tags(op, existing(ec2_arn(request, "subnet", subnet or "*"), ec2_tags(request, r, subnet or ""))))
        groups = request.values("SecurityGroupId") or data.get("SecurityGroupIds") or ["*"]
        for group in groups:
            checks.append(with_tags(op, existing(ec2_arn(request, "security-group", group), ec2_tags(request, r, group))))
        key = request.params.get("KeyName") or data.get("KeyName")
        if key:
            checks.append(with_tags(op, existing(ec2_arn(request, "key-pair", key), {})))
        profile = request.params.get("IamInstanceProfile.Arn") or request.params.get("IamInstanceProfile.Name")
        if profile:
            checks.extend(pass_role(request, profile))
        # Tagging on creation is authorized as ec2:CreateTags with the
        # creating action in the context.
        for kind in sorted(tagged):
            checks.append(with_tags("ec2:CreateTags", created(ec2_arn(request, kind, "*"), request),
                                    {"ec2:createaction": "RunInstances"}))
        return checks
    if op == "CreateTags":
        checks = []
        for rid in request.values("ResourceId"):
            kind = EC2_PREFIXES.get(rid.split("-")[0], "instance")
            arn = ec2_arn(request, kind, rid)
            context = {f"aws:requesttag/{k.lower()}": v for k, v in request.tags().items()}
            context["aws:tagkeys"] = list(request.tags())
            checks.append(with_tags(op, existing(arn, ec2_tags(request, request.region, rid)), context))
        return checks
    if op == "CopyImage":
        source_region = request.params.get("SourceRegion", r)
        source = request.params.get("SourceImageId", "*")
        checks = [
            with_tags(op, existing(ec2_arn(request, "image", source, source_region), {})),
            with_tags(op, created(ec2_arn(request, "image", "*"), request)),
            with_tags(op, created(ec2_arn(request, "snapshot", "*"), request)),
        ]
        return checks
    if op == "DeregisterImage":
        image = request.params.get("ImageId", "")
        return [with_tags(op, existing(ec2_arn(request, "image", image), ec2_tags(request, r, image)))]
    if op == "DeleteSnapshot":
        snap = request.params.get("SnapshotId", "")
        return [with_tags(op, existing(ec2_arn(request, "snapshot", snap), ec2_tags(request, r, snap)))]
    return None


def pass_role(request, profile):
    """Launching with an instance profile passes its roles to EC2."""
    backend = iam_backends[request.account]["aws"]
    roles = []
    for p in backend.instance_profiles.values():
        if profile in (p.arn, p.name):
            roles = [role.arn for role in p.roles]
    if not roles:
        return [("iam:PassRole", "*", {"reason": f"no instance profile {profile}"})]
    return [("iam:PassRole", arn, {"iam:passedtoservice": "ec2.amazonaws.com"}) for arn in roles]


def rds_support(request, checks, op):
    """The option group, parameter group and subnet group a new instance uses."""
    r = request.region
    for param, kind, default in (("OptionGroupName", "og", "default"), ("DBParameterGroupName", "pg", "default"),
                                 ("DBSubnetGroupName", "subgrp", "default")):
        name = request.params.get(param, default)
        checks.append(with_tags(op, existing(f"arn:aws:rds:{r}:{request.account}:{kind}:{name}", {})))


def rds_request(request, op):
    r = request.region
    p = request.params
    if op == "DescribeDBInstances":
        name = p.get("DBInstanceIdentifier", "*")
        return [with_tags(op, existing(*rds_resource(request, r, "db", name)))]
    if op == "DescribeDBSnapshots":
        if p.get("DBSnapshotIdentifier"):
            return [with_tags(op, existing(*rds_resource(request, r, "snapshot", p["DBSnapshotIdentifier"])))]
        if p.get("DBInstanceIdentifier"):
            return [with_tags(op, existing(*rds_resource(request, r, "db", p["DBInstanceIdentifier"])))]
        return [with_tags(op, existing(f"arn:aws:rds:{r}:{request.account}:snapshot:*", {}))]
    if op == "DescribeDBInstanceAutomatedBackups":
        if p.get("DBInstanceAutomatedBackupsArn"):
            return [with_tags(op, existing(p["DBInstanceAutomatedBackupsArn"], {}))]
        if p.get("DBInstanceIdentifier"):
            return [with_tags(op, existing(*rds_resource(request, r, "db", p["DBInstanceIdentifier"])))]
        return [with_tags(op, existing(f"arn:aws:rds:{r}:{request.account}:auto-backup:*", {}))]
    if op in ("PromoteReadReplica", "ModifyDBInstance", "DeleteDBInstance", "RebootDBInstance"):
        return [with_tags(op, existing(*rds_resource(request, r, "db", p.get("DBInstanceIdentifier", ""))))]
    if op == "DeleteDBSnapshot":
        return [with_tags(op, existing(*rds_resource(request, r, "snapshot", p.get("DBSnapshotIdentifier", ""))))]
    if op in ("DescribeDBClusters", "FailoverDBCluster", "ModifyDBCluster"):
        name = p.get("DBClusterIdentifier", "*")
        return [with_tags(op, existing(*rds_resource(request, r, "cluster", name)))]
    if op == "DescribeGlobalClusters":
        name = p.get("GlobalClusterIdentifier", "*")
        return [with_tags(op, existing(f"arn:aws:rds::{request.account}:global-cluster:{name}", {}))]
    if op in ("SwitchoverGlobalCluster", "FailoverGlobalCluster"):
        name = p.get("GlobalClusterIdentifier", "")
        return [with_tags(op, existing(f"arn:aws:rds::{request.account}:global-cluster:{name}", {})),
                with_tags(op, existing(*rds_resource(request, r, "cluster", p.get("TargetDbClusterIdentifier", ""))))]
    if op == "AddTagsToResource":
        arn = p.get("ResourceName", "")
        kind = arn.split(":")[5] if arn.count(":") >= 6 else "db"
        resource_arn, tags = rds_resource(request, r, kind, arn)
        return [with_tags(op, (resource_arn, {"tags": tags, "request_tags": request.tags()}))]
    checks = []
    new = None
    if op == "CreateDBSnapshot":
        checks.append(with_tags(op, existing(*rds_resource(request, r, "db", p.get("DBInstanceIdentifier", "")))))
        new = f"arn:aws:rds:{r}:{request.account}:snapshot:{p.get('DBSnapshotIdentifier', '')}"
    elif op == "CopyDBSnapshot":
        checks.append(with_tags(op, existing(*rds_resource(request, r, "snapshot", p.get("SourceDBSnapshotIdentifier", "")))))
        new = f"arn:aws:rds:{r}:{request.account}:snapshot:{p.get('TargetDBSnapshotIdentifier', '')}"
        if request.replay:
            # The source region's replay names only the source snapshot.
            return checks
    elif op == "RestoreDBInstanceFromDBSnapshot":
        checks.append(with_tags(op, existing(*rds_resource(request, r, "snapshot", p.get("DBSnapshotIdentifier", "")))))
        rds_support(request, checks, op)
        new = f"arn:aws:rds:{r}:{request.account}:db:{p.get('DBInstanceIdentifier', '')}"
    elif op == "RestoreDBInstanceToPointInTime":
        if p.get("SourceDBInstanceAutomatedBackupsArn"):
            checks.append(with_tags(op, existing(p["SourceDBInstanceAutomatedBackupsArn"], {})))
        else:
            checks.append(with_tags(op, existing(*rds_resource(request, r, "db", p.get("SourceDBInstanceIdentifier", "")))))
        rds_support(request, checks, op)
        new = f"arn:aws:rds:{r}:{request.account}:db:{p.get('TargetDBInstanceIdentifier', '')}"
    elif op == "CreateDBInstanceReadReplica":
        checks.append(with_tags(op, existing(*rds_resource(request, r, "db", p.get("SourceDBInstanceIdentifier", "")))))
        if request.replay:
            return checks
        rds_support(request, checks, op)
        new = f"arn:aws:rds:{r}:{request.account}:db:{p.get('DBInstanceIdentifier', '')}"
    elif op == "StartDBInstanceAutomatedBackupsReplication":
        source = p.get("SourceDBInstanceArn", "")
        checks.append(with_tags(op, existing(*rds_resource(request, r, "db", source))))
        if request.replay:
            return checks
        checks.append(with_tags(op, created(f"arn:aws:rds:{r}:{request.account}:auto-backup:*", request)))
        return checks
    else:
        return None
    checks.append(with_tags(op, created(new, request)))
    if request.tags():
        # Tags given at creation are authorized as rds:AddTagsToResource.
        checks.append(with_tags("rds:AddTagsToResource", created(new, request)))
    return checks


def ecs_request(request, op):
    """ECS's service actions act on the service's ARN."""
    p = request.params
    cluster = str(p.get("cluster", "default")).rsplit("/", 1)[-1]
    if op == "DescribeServices":
        names = p.get("services") or ["*"]
    elif op == "UpdateService":
        names = [p.get("service", "")]
    else:
        return None
    checks = []
    for name in names:
        arn = name if name.startswith("arn:") else f"arn:aws:ecs:{request.region}:{request.account}:service/{cluster}/{name}"
        checks.append((op, arn, {}))
    return checks


def lambda_request(request, op):
    """`lambda:InvokeFunction` on the function's ARN, qualified when the
    call names a qualifier (by query or `name:alias`)."""
    if op != "Invoke":
        return None
    name = request.params.get("FunctionName", "")
    qualifier = request.params.get("Qualifier")
    arn = name if name.startswith("arn:") else f"arn:aws:lambda:{request.region}:{request.account}:function:{name}"
    if qualifier:
        arn = f"{arn}:{qualifier}"
    return [("InvokeFunction", arn, {})]


def autoscaling_group(request, name):
    """The ARN and tags of a group (the ARN a new one will have)."""
    group = autoscaling_backends[request.account][request.region].autoscaling_groups.get(name)
    if group is None:
        return (f"arn:aws:autoscaling:{request.region}:{request.account}:autoScalingGroup:new:"
                f"autoScalingGroupName/{name}"), {}
    return group.arn, {t["Key"]: t.get("Value", "") for t in group.tags}


def autoscaling_request(request, op):
    p = request.params
    if op.startswith("Describe"):
        return [(op, "*", {})]
    if op in ("UpdateAutoScalingGroup", "SetDesiredCapacity", "DeleteAutoScalingGroup"):
        return [with_tags(op, existing(*autoscaling_group(request, p.get("AutoScalingGroupName", ""))))]
    if op == "CreateOrUpdateTags":
        name = p.get("Tags.member.1.ResourceId", "")
        arn, tags = autoscaling_group(request, name)
        return [with_tags(op, (arn, {"tags": tags, "request_tags": request.tags()}))]
    if op == "CreateAutoScalingGroup":
        arn, _ = autoscaling_group(request, p.get("AutoScalingGroupName", ""))
        checks = [with_tags(op, created(arn, request))]
        if request.tags():
            checks.append(with_tags("autoscaling:CreateOrUpdateTags", created(arn, request)))
        # Whoever makes a group from a launch template must be allowed to
        # launch from it (and to pass its instance profile's role).
        spec = "LaunchTemplate."
        if not any(k.startswith(spec) for k in p):
            spec = "MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification."
        template_id = p.get(spec + "LaunchTemplateId")
        template_name = p.get(spec + "LaunchTemplateName")
        if template_id or template_name:
            backend = ec2_backends[request.account][request.region]
            template = next((t for t in backend.launch_templates.values()
                             if t.id == template_id or (template_name and t.name == template_name)), None)
            if template is None:
                return checks + [("ec2:RunInstances", "*", {"reason": "no such launch template"})]
            lt = ec2_arn(request, "launch-template", template.id)
            checks.append(("ec2:RunInstances", lt, {"ec2:launchtemplate": lt}))
            profile = template.latest_version().data.get("IamInstanceProfile", {})
            profile = profile.get("Arn") or profile.get("Name")
            if profile:
                checks.extend(pass_role(request, profile))
        return checks
    return None


def cloudwatch_request(request, op):
    p = request.params
    if op in ("GetMetricStatistics", "GetMetricData", "ListMetrics"):
        return [(op, "*", {})]
    if op == "PutMetricData":
        return [(op, "*", {"cloudwatch:namespace": p.get("Namespace", "")})]
    if op == "DescribeAlarms":
        names = p.get("AlarmNames") or ["*"]
        return [(op, f"arn:aws:cloudwatch:{request.region}:{request.account}:alarm:{n}", {}) for n in names]
    return None


def sts_request(request, op):
    if op == "GetCallerIdentity":
        return []
    if op == "AssumeRole":
        return [(op, request.params.get("RoleArn", ""), {})]
    return None


def normalized_name(name):
    out = ""
    for c in name.rstrip(".").lower():
        out += c if (c.isascii() and (c.isalnum() or c in "-_.")) else "".join(f"\\{b:03o}" for b in c.encode())
    return out


def route53_request(request):
    path = re.sub(r"^/2013-04-01", "", request.path)
    m = request.method
    if path == "/hostedzonesbyname":
        return "ListHostedZonesByName", [("ListHostedZonesByName", "*", {})]
    if path == "/healthcheck" and m == "GET":
        return "ListHealthChecks", [("ListHealthChecks", "*", {})]
    if path == "/hostedzone" and m == "GET":
        return "ListHostedZones", [("ListHostedZones", "*", {})]
    match = re.match(r"^/hostedzone/([^/]+)/rrset/?$", path)
    if match and m == "GET":
        return "ListResourceRecordSets", [("ListResourceRecordSets", f"arn:aws:route53:::hostedzone/{match.group(1)}", {})]
    if match and m == "POST":
        changes = re.findall(r"<Change>(.*?)</Change>", request.raw.decode(), re.S)
        actions, names, types = [], [], []
        for change in changes:
            actions.append(re.search(r"<Action>(.*?)</Action>", change).group(1))
            names.append(normalized_name(re.search(r"<Name>(.*?)</Name>", change).group(1)))
            types.append(re.search(r"<Type>(.*?)</Type>", change).group(1))
        context = {
            "route53:changeresourcerecordsetsactions": actions,
            "route53:changeresourcerecordsetsnormalizedrecordnames": names,
            "route53:changeresourcerecordsetsrecordtypes": types,
        }
        return "ChangeResourceRecordSets", [("ChangeResourceRecordSets", f"arn:aws:route53:::hostedzone/{match.group(1)}", context)]
    match = re.match(r"^/change/([^/]+)$", path)
    if match:
        return "GetChange", [("GetChange", f"arn:aws:route53:::change/{match.group(1)}", {})]
    match = re.match(r"^/healthcheck/([^/]+)(/status)?$", path)
    if match:
        op = "GetHealthCheckStatus" if match.group(2) else ("UpdateHealthCheck" if m == "POST" else "GetHealthCheck")
        return op, [(op, f"arn:aws:route53:::healthcheck/{match.group(1)}", {})]
    return f"{m} {path}", None


def s3_request(request):
    parts = request.path.lstrip("/").split("/", 1)
    bucket = parts[0]
    if not bucket:
        return "ListAllMyBuckets", [("ListAllMyBuckets", "*", {})]
    key = parts[1] if len(parts) > 1 else ""
    m = request.method
    q = request.query
    if not key:
        for sub, op in (("replication", "GetReplicationConfiguration"), ("object-lock", "GetBucketObjectLockConfiguration"),
                        ("lifecycle", "GetLifecycleConfiguration")):
            if sub in q:
                return op, [(op, f"arn:aws:s3:::{bucket}", {})]
        if m in ("GET", "HEAD"):
            context = {"s3:prefix": q["prefix"]} if "prefix" in q else {}
            return "ListBucket", [("ListBucket", f"arn:aws:s3:::{bucket}", context)]
        return f"{m} /{bucket}", None
    obj = f"arn:aws:s3:::{bucket}/{key}"
    if m in ("GET", "HEAD"):
        return "GetObject", [("GetObject", obj, {})]
    if m == "PUT":
        checks = [("PutObject", obj, {})]
        source = request.environ.get("HTTP_X_AMZ_COPY_SOURCE")
        if source:
            checks.append(("GetObject", "arn:aws:s3:::" + urllib.parse.unquote(source.lstrip("/").split("?")[0]), {}))
        return "PutObject", checks
    if m == "DELETE":
        return "DeleteObject", [("DeleteObject", obj, {})]
    return f"{m} /{bucket}/{key}", None


def glob(pattern, value, case=True):
    expression = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(expression, value, 0 if case else re.I) is not None


def as_list(value):
    return value if isinstance(value, list) else [value]


def condition_holds(op, key, wanted, context):
    """One condition of a statement, as IAM evaluates it."""
    key = key.lower()
    present = key in context
    value = context.get(key)
    wanted = [str(w) for w in as_list(wanted)]
    if op == "Null":
        return (not present) if wanted[0] == "true" else present
    if op.startswith("ForAllValues:"):
        inner = op.split(":", 1)[1]
        return all(condition_holds(inner, key, wanted, {key: v}) for v in as_list(value or []))
    values = [str(v) for v in as_list(value)] if present else []
    if op == "StringEquals":
        return present and any(v in wanted for v in values)
    if op == "StringNotEquals":
        return not present or not any(v in wanted for v in values)
    if op in ("StringLike", "ArnLike"):
        return present and any(glob(w, v) for w in wanted for v in values)
    if op == "Bool":
        return present and any(v.lower() == w.lower() for w in wanted for v in values)
    raise ValueError(f"condition operator {op} is not modelled")


def evaluate(policy, action, arn, context):
    """None when `policy` allows `action` on `arn` in `context`; else why not."""
    if "reason" in context:
        return context["reason"]
    if policy is None:
        return "no policy for this principal"
    allowed = False
    for statement in as_list(policy.get("Statement", [])):
        if "NotAction" in statement or "NotResource" in statement:
            return "NotAction/NotResource are not modelled"
        if not any(glob(a, action, case=False) for a in as_list(statement.get("Action", []))):
            continue
        if not any(glob(r, arn) for r in as_list(statement.get("Resource", []))):
            continue
        try:
            holds = all(
                condition_holds(op, key, wanted, context)
                for op, keys in statement.get("Condition", {}).items()
                for key, wanted in keys.items()
            )
        except ValueError as e:
            return str(e)
        if not holds:
            continue
        if statement.get("Effect") == "Deny":
            return f"explicitly denied by {statement.get('Sid', 'a statement')}"
        allowed = True
    return None if allowed else "no statement allows it"


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
