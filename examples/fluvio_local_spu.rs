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
//! already registered is not an error, so the command can be re-run.

use std::process::ExitCode;

use fluvio::metadata::customspu::CustomSpuSpec;
use fluvio::{FluvioAdmin, FluvioClusterConfig};

fn split(addr: &str) -> Result<(String, u16), String> {
    let (h, p) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr:?}: expected HOST:PORT"))?;
    let port = p
        .parse()
        .map_err(|_| format!("{addr:?}: {p:?} is not a port"))?;
    Ok((h.to_owned(), port))
}

async fn register(args: &[String]) -> Result<String, String> {
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_owned());
    let endpoint = arg(0, "127.0.0.1:9003");
    let id: i32 = arg(1, "5001")
        .parse()
        .map_err(|_| "the SPU id must be an integer".to_string())?;
    let (pub_host, pub_port) = split(&arg(2, "127.0.0.1:9010"))?;
    let (priv_host, priv_port) = split(&arg(3, "127.0.0.1:9011"))?;
    let admin = FluvioAdmin::connect_with_config(&FluvioClusterConfig::new(endpoint.clone()))
        .await
        .map_err(|e| format!("cannot connect to the SC at {endpoint}: {e}"))?;
    let spus = admin
        .all::<CustomSpuSpec>()
        .await
        .map_err(|e| format!("cannot list custom SPUs: {e}"))?;
    if let Some(s) = spus.iter().find(|s| s.spec.id == id) {
        return Ok(format!(
            "custom SPU {id} is already registered ({}: public {})",
            s.name, s.spec.public_endpoint
        ));
    }
    // The endpoint types are not re-exported by the fluvio crate: fill the
    // defaults (plaintext) in place.
    let mut spec = CustomSpuSpec {
        id,
        ..Default::default()
    };
    spec.public_endpoint.port = pub_port;
    spec.public_endpoint.ingress.push(Default::default());
    spec.public_endpoint.ingress[0].hostname = Some(pub_host.clone());
    spec.private_endpoint.port = priv_port;
    spec.private_endpoint.host = priv_host.clone();
    admin
        .create(format!("custom-spu-{id}"), false, spec)
        .await
        .map_err(|e| format!("cannot register SPU {id}: {e}"))?;
    Ok(format!(
        "registered custom SPU {id}: public {pub_host}:{pub_port}, private {priv_host}:{priv_port}"
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match register(&args).await {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fluvio_local_spu: {e}");
            ExitCode::FAILURE
        }
    }
}
