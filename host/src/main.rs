//! The `toolmesh` command: parses the command line, asks the library, and
//! prints. Serving, loading and calling live in the library
//! ([`toolmesh::app`]).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use toolmesh::app::{self, ServeOptions, Stack, Stores, listing};
use toolmesh::audit::{self, AuditFilter};
use toolmesh::config::Config;
use toolmesh::control;
use toolmesh::http::auth::keys::{ClientStore, NewClient};
use toolmesh::http::config::ClientLimits;
use toolmesh::identity::{Scope, Zone};
use toolmesh::p2p::identity;
use toolmesh::plugin::install::install;
use toolmesh::plugin::loader::sign_dir;
use toolmesh::plugin::trust::{PublisherKey, SIGNATURE_FILE};
use toolmesh::service::CallMeta;
use tracing_subscriber::EnvFilter;

/// A sandboxed tool host for AI agents: WebAssembly component tools over MCP.
#[derive(Parser)]
#[command(name = "toolmesh", version, propagate_version = true)]
struct Cli {
    /// Configuration file (TOML). Without it every setting has its default.
    #[arg(long, global = true, env = "TOOLMESH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Data directory: compile cache and, by default, the plugin directory.
    #[arg(long, global = true, env = "TOOLMESH_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Plugin directory. Default: <data-dir>/plugins.
    #[arg(long, global = true, env = "TOOLMESH_PLUGINS", value_name = "DIR")]
    plugins: Option<PathBuf>,

    /// Compiled-component cache. Default: <data-dir>/cache/components.
    #[arg(long, global = true, env = "TOOLMESH_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Do not load the plugins bundled with the host.
    #[arg(long, global = true)]
    no_bundled: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every plugin's tools over MCP: on stdin/stdout, or over
    /// Streamable HTTP with `--http` (add `--stdio` for both).
    Serve {
        /// Join the peer-to-peer mesh (as `[p2p] enabled = true`).
        #[arg(long)]
        p2p: bool,
        /// Serve MCP over HTTP at ADDR/mcp (as `[http] listen`), e.g.
        /// 127.0.0.1:8080. A non-loopback address needs authentication.
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
        /// With HTTP, serve stdin/stdout too.
        #[arg(long)]
        stdio: bool,
        /// Answer clients after at most MS milliseconds of loading plugins
        /// (as `[runtime] startup_wait_ms`); later plugins join when loaded.
        #[arg(long, env = "TOOLMESH_STARTUP_WAIT_MS", value_name = "MS")]
        startup_wait_ms: Option<u64>,
    },
    /// Manage the API keys of HTTP clients (in the data directory; a running
    /// host sees changes on the next request).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Show the audit log of HTTP requests, oldest first.
    Audit {
        /// Only this client's requests.
        #[arg(long)]
        client: Option<String>,
        /// Only requests from the last DURATION (`90s`, `15m`, `2h`, `7d`).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// At most N records (the newest).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Show this host's public key and peer id (the key is created on first
    /// use), or create a publisher key for signing plugins.
    Key {
        /// Create a new key in FILE instead, and show its public key.
        #[arg(long, value_name = "FILE")]
        generate: Option<PathBuf>,
    },
    /// The peers of the running host (through its control socket).
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Offer an installed plugin, or a neural network's weights, to the mesh
    /// (through the running host).
    Publish {
        /// An installed plugin's name.
        #[arg(long, conflicts_with_all = ["weights", "network"], required_unless_present = "weights")]
        plugin: Option<String>,
        /// A weights blob's hash (blake3:…).
        #[arg(long, requires = "network")]
        weights: Option<String>,
        /// The network the weights belong to.
        #[arg(long)]
        network: Option<String>,
    },
    /// Manage installed plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Show the usage figures of the host serving from this data directory
    /// (or the last one that did): calls, errors, latency, fuel, memory.
    Stats {
        /// Print the snapshot as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The running host's alerts (raised by `[[alerts]]` rules), or
    /// acknowledge one.
    Alerts {
        /// Acknowledge alert ID.
        #[arg(long, value_name = "ID")]
        ack: Option<u64>,
    },
    /// Run one tool locally, without MCP, and print its result as MCP JSON.
    ///
    /// Exit status: 0 on success, 1 when the tool returned an error result,
    /// 2 when the tool does not exist or the host could not start.
    Call {
        /// The tool: `<plugin>__<tool>`, or a tool name only one plugin has.
        tool: String,
        /// The arguments, a JSON object.
        #[arg(default_value = "{}")]
        arguments: String,
        /// The calling agent (as `_meta` `toolmesh/agent` over MCP).
        #[arg(long)]
        agent: Option<String>,
        /// A permission grant token (as `_meta` `toolmesh/token`).
        #[arg(long)]
        token: Option<String>,
        /// The budget to charge (as `_meta` `toolmesh/budget`).
        #[arg(long)]
        budget: Option<String>,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// List the plugins this host would load, with their tools, and the ones
    /// it would refuse, with the reason.
    List,
    /// Validate a plugin completely and copy it into the plugin directory.
    Install {
        /// The plugin's directory (or its plugin.toml).
        path: PathBuf,
        /// Replace an installed plugin of the same name.
        #[arg(long)]
        force: bool,
    },
    /// Sign a plugin (its plugin.toml and component hash) with a publisher
    /// key, writing plugin.sig beside the manifest.
    Sign {
        /// The plugin's directory.
        path: PathBuf,
        /// The publisher key file (default: this host's key).
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Fetch a plugin (by name or hash) from the mesh through the running
    /// host, and install it if a trusted publisher signed it.
    Fetch {
        /// A plugin name, or a blob hash (blake3:…).
        target: String,
    },
    /// Load a disabled plugin into the running host and serve it.
    Enable(LifecycleArgs),
    /// Stop serving a plugin on the running host (its tools are unlisted;
    /// it stays disabled across restarts).
    Disable(LifecycleArgs),
    /// Keep a plugin's tools listed but refuse their calls.
    Pause(LifecycleArgs),
    /// Serve a paused plugin's calls again.
    Resume(LifecycleArgs),
    /// Load a plugin again from its source (a failing version keeps the
    /// loaded one serving).
    Reload(LifecycleArgs),
    /// The running host's lifecycle events, newest first.
    Events {
        /// Only this plugin's.
        #[arg(long)]
        plugin: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

/// A lifecycle command's arguments.
#[derive(clap::Args)]
struct LifecycleArgs {
    /// The plugin's name.
    name: String,
    /// Why, for the lifecycle record.
    #[arg(long)]
    reason: Option<String>,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Add a client and print its API key, once, on the last line.
    Add {
        /// The client's name (what the audit log shows).
        name: String,
        /// The agent it authenticates as.
        #[arg(long)]
        agent: String,
        /// What it may do: `tools` (the default), `admin`. Repeatable.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<Scope>,
        /// Its trust zone: local, trusted, external (the default).
        #[arg(long, default_value = "external")]
        zone: Zone,
        /// Its request rate (requests/s), instead of `[http.limits]`'s.
        #[arg(long)]
        rate: Option<u32>,
        /// Its burst, instead of `[http.limits]`'s.
        #[arg(long)]
        burst: Option<u32>,
        /// Its cap on tool calls in flight, instead of `[http.limits]`'s.
        #[arg(long)]
        in_flight: Option<u32>,
    },
    /// List the clients (never their keys).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a client's key.
    Revoke {
        /// The client's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum PeerCommand {
    /// The known peers.
    List,
    /// Connect to a peer by multiaddr.
    Connect {
        /// e.g. /ip4/10.0.0.2/tcp/4001/p2p/12D3Koo…
        address: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        // rmcp logs every stateless HTTP request at info.
        Command::Serve { .. } => "info,rmcp=warn",
        _ => "warn",
    };
    init_logging(default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr (in `serve`, stdout is the protocol), coloured only
/// when stderr is a terminal.
fn init_logging(default_level: &str) {
    let filter =
        EnvFilter::try_from_env("TOOLMESH_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = &cli.data_dir {
        config.data_dir = Some(dir.clone());
    }
    if let Some(dir) = &cli.plugins {
        config.plugins_dir = Some(dir.clone());
    }
    if let Some(dir) = &cli.cache_dir {
        config.cache_dir = Some(dir.clone());
    }
    if cli.no_bundled {
        config.bundled_plugins = false;
    }
    Ok(config)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(&cli)?;
    match cli.command {
        Command::Serve {
            p2p,
            http,
            stdio,
            startup_wait_ms,
        } => {
            let mut config = config;
            if let Some(ms) = startup_wait_ms {
                config.runtime.startup_wait_ms = ms;
            }
            app::serve(&config, ServeOptions { p2p, http, stdio }).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Client(command) => client(&config, command),
        Command::Audit {
            client,
            since,
            limit,
            json,
        } => audit(&config, client, since.as_deref(), limit, json),
        Command::Key { generate } => key(&config, generate.as_deref()),
        Command::Plugin(PluginCommand::Sign { path, key }) => sign(&config, &path, key.as_deref()),
        Command::Plugin(PluginCommand::Fetch { target }) => {
            let mut arguments = serde_json::Map::new();
            arguments.insert("target".into(), target.into());
            control(&config, "mesh__fetch", arguments).await
        }
        Command::Plugin(PluginCommand::Enable(args)) => lifecycle(&config, "enable", args).await,
        Command::Plugin(PluginCommand::Disable(args)) => lifecycle(&config, "disable", args).await,
        Command::Plugin(PluginCommand::Pause(args)) => lifecycle(&config, "pause", args).await,
        Command::Plugin(PluginCommand::Resume(args)) => lifecycle(&config, "resume", args).await,
        Command::Plugin(PluginCommand::Reload(args)) => lifecycle(&config, "reload", args).await,
        Command::Plugin(PluginCommand::Events { plugin, limit }) => {
            let mut arguments = serde_json::Map::new();
            arguments.insert("limit".into(), limit.into());
            if let Some(plugin) = plugin {
                arguments.insert("plugin".into(), plugin.into());
            }
            control(&config, "admin__events", arguments).await
        }
        Command::Alerts { ack } => {
            let mut arguments = serde_json::Map::new();
            match ack {
                Some(id) => {
                    arguments.insert("id".into(), id.into());
                    control(&config, "admin__ack_alert", arguments).await
                }
                None => control(&config, "admin__alerts", arguments).await,
            }
        }
        Command::Peer(PeerCommand::List) => {
            control(&config, "mesh__peers", serde_json::Map::new()).await
        }
        Command::Peer(PeerCommand::Connect { address }) => {
            let mut arguments = serde_json::Map::new();
            arguments.insert("address".into(), address.into());
            control(&config, "mesh__connect", arguments).await
        }
        Command::Publish {
            plugin,
            weights,
            network,
        } => {
            let mut arguments = serde_json::Map::new();
            for (key, value) in [
                ("plugin", plugin),
                ("weights", weights),
                ("network", network),
            ] {
                if let Some(value) = value {
                    arguments.insert(key.into(), value.into());
                }
            }
            control(&config, "mesh__publish", arguments).await
        }
        Command::Plugin(PluginCommand::List) => list(&config).await,
        Command::Plugin(PluginCommand::Install { path, force }) => {
            install_plugin(&config, &path, force).await
        }
        Command::Call {
            tool,
            arguments,
            agent,
            token,
            budget,
        } => {
            let meta = CallMeta {
                request_id: "cli".into(),
                client: Some("toolmesh-cli".into()),
                progress: None,
                agent,
                token,
                budget,
                ..CallMeta::default()
            };
            call(&config, &tool, &arguments, meta).await
        }
        Command::Stats { json } => stats(&config, json),
    }
}

fn key(config: &Config, generate: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match generate {
        Some(path) => {
            let key = identity::create(path)?;
            writeln!(out, "created {}", path.display())?;
            writeln!(out, "publisher key: {}", PublisherKey::of(&key))?;
        }
        None => {
            let path = config.p2p_dir().join(identity::HOST_KEY_FILE);
            let key = identity::host_key(&config.p2p_dir())?;
            let peer_id = identity::libp2p_keypair(&key).public().to_peer_id();
            writeln!(out, "peer id: {peer_id}")?;
            writeln!(out, "publisher key: {}", PublisherKey::of(&key))?;
            writeln!(out, "key file: {}", path.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sign(
    config: &Config,
    dir: &std::path::Path,
    key: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let key = match key {
        Some(path) => identity::load(path)?,
        None => identity::host_key(&config.p2p_dir())?,
    };
    let (manifest, signature) = sign_dir(dir, &key)?;
    let path = dir.join(SIGNATURE_FILE);
    std::fs::write(&path, signature.to_file_text())
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!(
        "signed {} {} as {} ({})",
        manifest.name,
        manifest.version,
        signature.publisher,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Calls a tool on the running host through its control socket and prints
/// its result as JSON.
async fn control(
    config: &Config,
    tool: &str,
    arguments: serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<ExitCode> {
    let socket = config.p2p_dir().join(control::SOCKET_FILE);
    let value = control::call(&socket, tool, arguments, |done, total, message| {
        let total = total.map(|t| format!(" of {t}")).unwrap_or_default();
        eprintln!("{done}{total} {}", message.unwrap_or_default());
    })
    .await?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(ExitCode::SUCCESS)
}

/// `toolmesh plugin enable|disable|pause|resume|reload NAME`, through the
/// running host's control socket; prints what happened.
async fn lifecycle(config: &Config, action: &str, args: LifecycleArgs) -> anyhow::Result<ExitCode> {
    let socket = config.p2p_dir().join(control::SOCKET_FILE);
    let mut arguments = serde_json::Map::new();
    arguments.insert("plugin".into(), args.name.into());
    arguments.insert("action".into(), action.into());
    if let Some(reason) = args.reason {
        arguments.insert("reason".into(), reason.into());
    }
    let value = control::call(&socket, "admin__plugin", arguments, |_, _, _| {}).await?;
    let message = value["message"].as_str().unwrap_or("done");
    println!("{message}");
    Ok(ExitCode::SUCCESS)
}

fn stats(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let path = config.data_dir().join(toolmesh::stats::FILE);
    let snapshot = toolmesh::stats::read(&path)?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &snapshot)?;
        writeln!(out)?;
    } else {
        let running = toolmesh::stats::is_running(snapshot.pid);
        write!(out, "{}", toolmesh::stats::render(&snapshot, running))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(config: &Config) -> anyhow::Result<ExitCode> {
    let stack = Stack::start(config).await?;
    print!("{}", listing::render(&stack, &config.plugins_dir()));
    Ok(if stack.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn install_plugin(
    config: &Config,
    path: &std::path::Path,
    force: bool,
) -> anyhow::Result<ExitCode> {
    // A host serving from this data directory holds its stores; validating
    // a plugin needs none of them.
    let loader = Stack::loader(config, Stores::None)?;
    let plugins_dir = config.plugins_dir();
    let installed = install(&loader, path, &plugins_dir, force).await?;
    let m = &installed.plugin.manifest;
    println!(
        "{} {} {} {} ({} tools: {})",
        if installed.replaced {
            "replaced"
        } else {
            "installed"
        },
        m.name,
        m.version,
        installed.path.display(),
        installed.plugin.tools.len(),
        installed
            .plugin
            .tools
            .iter()
            .map(|t| t.qualified_name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

async fn call(
    config: &Config,
    tool: &str,
    arguments: &str,
    meta: CallMeta,
) -> anyhow::Result<ExitCode> {
    let arguments: serde_json::Value =
        serde_json::from_str(arguments).context("the arguments are not valid JSON")?;
    let serde_json::Value::Object(arguments) = arguments else {
        bail!("the arguments must be a JSON object");
    };
    let result = app::call(config, tool, arguments, meta).await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(if result.is_error == Some(true) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn client(config: &Config, command: ClientCommand) -> anyhow::Result<ExitCode> {
    let store = ClientStore::new(&config.data_dir());
    match command {
        ClientCommand::Add {
            name,
            agent,
            scopes,
            zone,
            rate,
            burst,
            in_flight,
        } => {
            let limits = (rate.is_some() || burst.is_some() || in_flight.is_some()).then(|| {
                let d = config.http.limits;
                ClientLimits {
                    requests_per_s: rate.unwrap_or(d.requests_per_s),
                    burst: burst.unwrap_or(d.burst),
                    max_in_flight: in_flight.unwrap_or(d.max_in_flight),
                }
            });
            let key = store.add(NewClient {
                name: name.clone(),
                agent: agent.clone(),
                scopes,
                zone,
                limits,
            })?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "client `{name}` added (agent `{agent}`); its key, shown only now:"
            )?;
            writeln!(out, "{key}")?;
        }
        ClientCommand::List { json } => {
            let clients = store.list()?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&clients)?)?;
            }
            for c in clients.iter().filter(|_| !json) {
                let scopes: Vec<_> = c.scopes.iter().map(|s| s.name()).collect();
                let state = if c.revoked_ms.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                writeln!(
                    out,
                    "{:<20} agent={:<16} scopes={:<12} zone={:<8} {state}",
                    c.name,
                    c.agent,
                    scopes.join(","),
                    c.zone
                )?;
            }
        }
        ClientCommand::Revoke { name } => {
            if !store.revoke(&name)? {
                bail!("no active client named `{name}` (`toolmesh client list` shows them)");
            }
            println!("client `{name}` revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn audit(
    config: &Config,
    client: Option<String>,
    since: Option<&str>,
    limit: Option<usize>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let since_ms = match since {
        Some(text) => {
            let ago = parse_duration(text)?;
            let now = audit::unix_ms(std::time::SystemTime::now());
            Some(now.saturating_sub(ago.as_millis() as u64))
        }
        None => None,
    };
    let filter = AuditFilter {
        client,
        since_ms,
        limit,
    };
    let dir = config.data_dir().join(audit::DIR);
    let records = audit::read(&dir, &filter)
        .with_context(|| format!("cannot read the audit log in {}", dir.display()))?;
    let mut out = std::io::stdout().lock();
    for r in &records {
        if json {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        } else {
            writeln!(
                out,
                "{} {:<12} {:<12} {:<15} {:<28} {:<15} {:>8}us{}",
                r.time_ms,
                r.client.as_deref().unwrap_or("-"),
                r.agent.as_deref().unwrap_or("-"),
                r.method,
                r.target.as_deref().unwrap_or("-"),
                r.outcome,
                r.latency_us,
                r.detail
                    .as_ref()
                    .map(|d| format!("  {d}"))
                    .unwrap_or_default()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `90s`, `15m`, `2h`, `7d`.
fn parse_duration(text: &str) -> anyhow::Result<std::time::Duration> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .with_context(|| format!("`{text}` is not a duration like 90s, 15m, 2h or 7d"))?;
    let seconds = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("`{text}`: the unit is s, m, h or d"),
    };
    Ok(std::time::Duration::from_secs(n.saturating_mul(seconds)))
}
