//! The `toolmesh` command: serve plugins over MCP, manage the plugin
//! directory, and call a tool locally.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use toolmesh::capability::HostStores;
use toolmesh::capability::grant::Grants;
use toolmesh::config::Config;
use toolmesh::host::Host;
use toolmesh::mcp::{CallMeta, McpServer};
use toolmesh::plugin::install::install;
use toolmesh::runtime::Runtime;
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
    /// Serve every plugin's tools over MCP on stdin/stdout.
    Serve,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve => "info",
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

/// Logs go to stderr: in `serve`, stdout is the protocol.
fn init_logging(default_level: &str) {
    let filter =
        EnvFilter::try_from_env("TOOLMESH_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
        Command::Serve => serve(&config).await,
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
            };
            call(&config, &tool, &arguments, meta).await
        }
        Command::Stats { json } => stats(&config, json),
    }
}

async fn serve(config: &Config) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &config.plugins_dir
        && !dir.is_dir()
    {
        bail!("the plugin directory {} does not exist", dir.display());
    }
    let host = Host::start(config).await?;
    let snapshot = host.tools.registry().snapshot();
    tracing::info!(
        plugins = snapshot.plugins().len(),
        tools = snapshot.tool_count(),
        refused = host.failures.len(),
        "serving MCP on stdio"
    );
    let snapshot_path = config.data_dir().join(toolmesh::stats::FILE);
    let snapshots = tokio::spawn(toolmesh::stats::keep_written(
        host.tools.clone(),
        snapshot_path.clone(),
    ));
    let served = McpServer::new(host.tools.clone()).serve_stdio().await;
    snapshots.abort();
    if let Err(e) = toolmesh::stats::write(&host.tools, &snapshot_path) {
        tracing::warn!(path = %snapshot_path.display(), "cannot write the usage snapshot: {e}");
    }
    served?;
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
    let host = Host::start(config).await?;
    let snapshot = host.tools.registry().snapshot();
    let mut out = std::io::stdout().lock();
    writeln!(out, "plugin directory: {}", config.plugins_dir().display())?;
    if snapshot.plugins().len() == 0 {
        writeln!(out, "no plugins loaded")?;
    }
    for plugin in snapshot.plugins() {
        let m = &plugin.manifest;
        writeln!(
            out,
            "\n{} {} [{}] from {}",
            m.name, m.version, m.level, plugin.source
        )?;
        let level = plugin.code.level();
        writeln!(
            out,
            "  quotas: fuel {}, memory {} bytes, {} handles, {} ms, output {} bytes",
            level.fuel,
            level.memory_bytes,
            level.handles,
            level.timeout.as_millis(),
            level.max_output_bytes
        )?;
        print_grants(&mut out, plugin.code.grants())?;
        writeln!(out, "  {}", m.description)?;
        writeln!(out, "  hash: {}", plugin.hash)?;
        for tool in &plugin.tools {
            writeln!(out, "  - {}: {}", tool.qualified_name, tool.description)?;
        }
    }
    for failure in &host.failures {
        writeln!(out, "\nREFUSED {failure}")?;
    }
    Ok(if host.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_grants(out: &mut impl Write, grants: &Grants) -> std::io::Result<()> {
    let mut granted: Vec<String> = grants.imports.iter().map(|c| c.to_string()).collect();
    for preopen in &grants.preopens {
        granted.push(format!(
            "fs {} = {} ({})",
            preopen.guest,
            preopen.host.display(),
            if preopen.writable {
                "read-write"
            } else {
                "read-only"
            }
        ));
    }
    for (name, _) in &grants.env {
        granted.push(format!("env {name}"));
    }
    if granted.is_empty() {
        writeln!(out, "  granted: nothing")?;
    } else {
        writeln!(out, "  granted: {}", granted.join(", "))?;
    }
    for refused in &grants.refused {
        writeln!(out, "  not granted: {refused}")?;
    }
    Ok(())
}

async fn install_plugin(
    config: &Config,
    path: &std::path::Path,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let runtime = std::sync::Arc::new(Runtime::new(
        &config.runtime,
        config.levels()?,
        config.compile_cache_dir(),
        HostStores {
            files_root: Some(config.files_dir()),
            ..HostStores::default()
        },
    )?);
    let plugins_dir = config.plugins_dir();
    let installed = install(&runtime, path, &plugins_dir, force).await?;
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
    let host = Host::start(config).await?;
    let cancel = CancellationToken::new();
    let ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            ctrl_c.cancel();
        }
    });
    let result = host
        .tools
        .call(tool, Some(arguments), meta, &cancel)
        .await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(if result.is_error == Some(true) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
