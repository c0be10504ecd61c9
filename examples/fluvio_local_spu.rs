//! Registers a custom SPU with a local Fluvio SC, the one step of starting a
//! loopback-only development cluster that `fluvio-run` cannot do by itself
//! (`fluvio cluster start --local` would do it, but it binds every
//! interface). See `docs/fluvio.md` for the whole sequence.
//!
//! ```text
//! cargo run --release --example fluvio_local_spu -- 127.0.0.1:9003 5001 127.0.0.1:9010 127.0.0.1:9011
//! ```
//!
//! Arguments (all optional, these are the defaults): SC public endpoint, SPU
//! id, SPU public address, SPU private address. Registering an id that is
//! already registered is not an error, so the command can be re-run. With a
//! TLS cluster, give the SC's non-TLS public address (`--bind-non-tls-public`).

use std::process::ExitCode;

use hotspot::fluvio_client::FluvioCluster;
use hotspot::fluvio_client::blocking::register_spu;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_owned());
    let Ok(id) = arg(1, "5001").parse() else {
        eprintln!("fluvio_local_spu: the SPU id must be an integer");
        return ExitCode::FAILURE;
    };
    let cluster = FluvioCluster::plain(arg(0, "127.0.0.1:9003"));
    match register_spu(
        &cluster,
        id,
        &arg(2, "127.0.0.1:9010"),
        &arg(3, "127.0.0.1:9011"),
    ) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fluvio_local_spu: {e:#}");
            ExitCode::FAILURE
        }
    }
}
