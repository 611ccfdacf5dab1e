//! The simulation proxy as a program, for the benchmarks (the tests use it
//! as a library, `tests/support/proxy.rs`): it listens on 127.0.0.1,
//! forwards to the emulator, and adds latency, in-between states and
//! faults per AWS operation, reproducibly under a seed. Prints its
//! endpoint on the first line of stdout, then serves until stdin closes
//! (or it is killed); with `--log FILE` every request is appended to FILE
//! as a JSON line (operation, resources, forwarded, what was injected).
//!
//! ```text
//! cargo run --example simproxy -- --upstream http://127.0.0.1:5055 \
//!     --transition PromoteReadReplica=modifying:6s \
//!     --transition StartInstances=pending:3s \
//!     --transition ChangeResourceRecordSets=PENDING:2s \
//!     --latency '*=5ms..20ms' --fault-rate '*=0.2' --faults internal,throttle
//! ```

#[allow(dead_code)]
#[path = "../tests/support/proxy.rs"]
mod proxy;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use proxy::{Fault, Latency, Pool, Proxy, Rules};

/// The simulation proxy.
#[derive(Parser)]
struct Args {
    /// The emulator to forward to.
    #[arg(long)]
    upstream: String,
    /// The port to listen on (127.0.0.1); 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The seed of every random decision.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// `OPERATION=STATUS:DURATION`: after the operation, the resources it
    /// changed show STATUS for DURATION.
    #[arg(long = "transition", value_parser = transition)]
    transitions: Vec<(String, (String, Duration))>,
    /// `OPERATION=DURATION` or `OPERATION=MIN..MAX` (`*` for all).
    #[arg(long = "latency", value_parser = latency)]
    latencies: Vec<(String, Latency)>,
    /// `OPERATION=RATE` (0..1) of calls answered with a fault (`*` for all).
    #[arg(long = "fault-rate", value_parser = rate)]
    fault_rates: Vec<(String, f64)>,
    /// The faults to inject: internal, unavailable, throttle, reset,
    /// stall:DURATION.
    #[arg(long, value_delimiter = ',', value_parser = fault)]
    faults: Vec<Fault>,
    /// `TYPE@ZONE`: a capacity pool with nothing left (`*` for any type or
    /// zone; a zone is a subnet id or an Availability Zone), e.g.
    /// `m5.large@us-west-2a`, `db.r6g.large@*`.
    #[arg(long = "no-capacity", value_parser = pool)]
    no_capacity: Vec<Pool>,
    /// Throttle as AWS documents: EC2's, RDS's and Route 53's token
    /// buckets, refusing what finds its bucket short.
    #[arg(long)]
    aws_throttling: bool,
    /// `SERVICE=URL`: requests signed for SERVICE (`ec2`, `rds`, ...) go
    /// to this emulator instead (one emulator per service answers as
    /// AWS's independent services do, not one request behind another's).
    #[arg(long = "route", value_parser = route)]
    routes: Vec<(String, String)>,
    /// Append every request to this file as a JSON line.
    #[arg(long)]
    log: Option<PathBuf>,
}

fn duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |i| text.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (like 6s or 250ms)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{text}`: the unit must be ms, s or m")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn pool(text: &str) -> Result<Pool, String> {
    let (kind, zone) = text
        .split_once('@')
        .ok_or_else(|| format!("`{text}` is not TYPE@ZONE"))?;
    let any = |s: &str| (s != "*" && !s.is_empty()).then(|| s.to_string());
    Ok(Pool {
        instance_type: any(kind),
        zone: any(zone),
    })
}

fn keyed(text: &str) -> Result<(String, &str), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v))
        .ok_or_else(|| format!("`{text}` is not OPERATION=VALUE"))
}

fn transition(text: &str) -> Result<(String, (String, Duration)), String> {
    let (op, value) = keyed(text)?;
    let (status, hold) = value
        .split_once(':')
        .ok_or_else(|| format!("`{value}` is not STATUS:DURATION"))?;
    Ok((op, (status.to_string(), duration(hold)?)))
}

fn latency(text: &str) -> Result<(String, Latency), String> {
    let (op, value) = keyed(text)?;
    let latency = match value.split_once("..") {
        Some((min, max)) => Latency {
            min: duration(min)?,
            max: duration(max)?,
        },
        None => Latency::fixed(duration(value)?),
    };
    if latency.max < latency.min {
        return Err(format!("`{value}`: the range is empty"));
    }
    Ok((op, latency))
}

fn route(text: &str) -> Result<(String, String), String> {
    let (service, to) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not SERVICE=URL"))?;
    if !to.starts_with("http://127.0.0.1:") {
        return Err(format!("`{to}` is not http://127.0.0.1:PORT"));
    }
    Ok((service.to_string(), to.to_string()))
}

fn rate(text: &str) -> Result<(String, f64), String> {
    let (op, value) = keyed(text)?;
    match value.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok((op, r)),
        _ => Err(format!("`{value}` is not a rate between 0 and 1")),
    }
}

fn fault(text: &str) -> Result<Fault, String> {
    Ok(match text {
        "internal" => Fault::Internal,
        "unavailable" => Fault::Unavailable,
        "throttle" => Fault::Throttle,
        "reset" => Fault::Reset,
        _ => match text.strip_prefix("stall:") {
            Some(d) => Fault::Stall(duration(d)?),
            None => return Err(format!("`{text}` is not a fault")),
        },
    })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let rules = Rules {
        seed: args.seed,
        fault_rate: args.fault_rates.into_iter().collect(),
        faults: args.faults,
        latency: args.latencies.into_iter().collect(),
        transitions: args.transitions.into_iter().collect::<BTreeMap<_, _>>(),
        no_capacity: args.no_capacity,
        aws_throttling: args.aws_throttling,
        routes: args.routes.into_iter().collect(),
        log: args.log,
    };
    let proxy = match Proxy::start_on(&args.upstream, rules, args.port).await {
        Ok(proxy) => proxy,
        Err(e) => {
            eprintln!("simproxy: cannot listen on 127.0.0.1:{}: {e}", args.port);
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("{}", proxy.endpoint);
    // Serve until stdin closes: a parent that dies takes the proxy along.
    let _ = tokio::task::spawn_blocking(|| {
        let mut buf = [0u8; 512];
        while matches!(std::io::Read::read(&mut std::io::stdin(), &mut buf), Ok(n) if n > 0) {}
    })
    .await;
    drop(proxy);
    std::process::ExitCode::SUCCESS
}
