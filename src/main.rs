//! The `akguard` command line: thin, everything lives in the library, except the demo, which
//! needs the emulator the library never compiles (the default `emulator` feature).

#[cfg(feature = "emulator")]
mod demo;
// The demo's renderer is tested against the library's corpus of hostile strings.
#[cfg(all(test, feature = "emulator"))]
#[path = "hostile.rs"]
mod hostile;

#[cfg(feature = "emulator")]
use std::io::Write as _;
#[cfg(feature = "emulator")]
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use akguard::app::App;
use akguard::cli;
use akguard::config::Settings;
#[cfg(feature = "emulator")]
use akguard::config::{LogFormat, LogSettings};
use akguard::escape;
use akguard::store;
use akguard::telemetry;
#[cfg(feature = "emulator")]
use akguard_emulator::{Emulator, Scenario};
use anyhow::Context;
use clap::{Args, CommandFactory as _, Parser, Subcommand};
#[cfg(feature = "emulator")]
use demo::DemoOptions;
use tokio_util::sync::CancellationToken;

/// Responds automatically when an Alibaba Cloud AccessKey pair leaks.
#[derive(Parser)]
#[command(
    name = "akguard",
    version,
    arg_required_else_help = true,
    after_help = "Settings come from built-in defaults, then --config FILE, then \
                  AKGUARD__SECTION__KEY environment variables (e.g. AKGUARD__LOG__FORMAT=json).\n\
                  `incidents` talks to a running daemon: AKGUARD_URL and AKGUARD_TOKEN (or --url, \
                  --token-file) say where and as whom.\n\
                  See `akguard help <COMMAND>` for each command. Builds with the emulator (the \
                  default) show akguard at work with nothing configured: `akguard demo`."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Watch a leak handled end to end against the built-in emulator (no configuration needed)
    #[cfg(feature = "emulator")]
    Demo {
        /// Stop after the summary; exit 0 only if the incident was resolved
        #[arg(long)]
        exit: bool,
        /// Address for the demo's daemon (a free port by default)
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// Run the daemon: migrate the database, then serve webhooks and the API and remediate
    Serve(ConfigFile),
    /// Check the settings and print them as JSON with every secret redacted
    CheckConfig(ConfigFile),
    /// Apply database migrations and exit
    Migrate(ConfigFile),
    /// Check the audit log's hash chain, its anchor and its triggers; exit 1 naming what is
    /// wrong
    VerifyAudit {
        #[command(flatten)]
        file: ConfigFile,
        /// A head hash recorded earlier (from GET /v1/status): fail unless the chain holds it
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
    },
    /// Read and act on incidents through a running daemon's API (AKGUARD_URL, AKGUARD_TOKEN)
    Incidents {
        #[command(flatten)]
        connection: cli::Connection,
        #[command(subcommand)]
        command: cli::IncidentsCommand,
    },
    /// Print an incident's report (Markdown; --json for the same content as data) from a
    /// running daemon's API
    Report {
        #[command(flatten)]
        connection: cli::Connection,
        /// The incident's id
        id: u64,
        /// The report's language
        #[arg(long, value_name = "LANG", default_value = "en")]
        lang: cli::Language,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a completion script for a shell, e.g. `akguard completions bash >
    /// /etc/bash_completion.d/akguard`
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Notification channels ([[notify.channels]])
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Run the Alibaba Cloud emulator (for tests and rehearsals)
    #[cfg(feature = "emulator")]
    Emulator {
        /// Address to listen on, e.g. 127.0.0.1:0
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// Scenario file (JSON), e.g. config/scenarios/leaked-unused.json
        #[arg(long, value_name = "FILE")]
        scenario: PathBuf,
    },
}

#[derive(Subcommand)]
enum NotifyCommand {
    /// Send a test message to one channel now; exit 1 with the platform's answer if it is
    /// refused
    Test {
        #[command(flatten)]
        file: ConfigFile,
        /// The channel's `name`
        #[arg(long, value_name = "NAME")]
        channel: String,
    },
}

#[derive(Args)]
struct ConfigFile {
    /// Settings file (TOML); without it, built-in defaults and the environment only
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    // Help, version and usage errors are clap's: it prints them and exits (2 for errors).
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", escape::terminal(&describe(&err)));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, skipping causes whose text the message already carries.
fn describe(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message = format!("{message}: {cause}");
        }
    }
    message
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    // The client commands need no settings: they talk to a daemon that has them.
    let command = match command {
        Command::Incidents {
            connection,
            command,
        } => {
            client_runtime()?.block_on(cli::incidents(&connection, command))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Report {
            connection,
            id,
            lang,
            json,
        } => {
            client_runtime()?.block_on(cli::report(&connection, id, lang, json))?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Completions { shell } => {
            let mut stdout = std::io::stdout();
            clap_complete::generate(shell, &mut Cli::command(), "akguard", &mut stdout);
            return Ok(ExitCode::SUCCESS);
        }
        command => command,
    };
    let config = match &command {
        #[cfg(feature = "emulator")]
        Command::Demo { exit, listen } => {
            return demo(DemoOptions {
                exit: *exit,
                listen: *listen,
            });
        }
        Command::Serve(file)
        | Command::CheckConfig(file)
        | Command::Migrate(file)
        | Command::VerifyAudit { file, .. }
        | Command::Notify {
            command: NotifyCommand::Test { file, .. },
        } => file.config.as_deref(),
        #[cfg(feature = "emulator")]
        Command::Emulator { .. } => None,
        Command::Incidents { .. } | Command::Report { .. } | Command::Completions { .. } => {
            unreachable!("handled before the settings are loaded")
        }
    };
    let settings = Settings::load(config)?;
    if let Command::CheckConfig(_) = command {
        for warning in settings.check()? {
            eprintln!("warning: {warning}");
        }
        println!("{}", serde_json::to_string_pretty(&settings.redacted())?);
        return Ok(ExitCode::SUCCESS);
    }
    telemetry::init(&settings.log);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        match command {
            Command::Serve(_) => {
                let app = App::build(&settings).await?;
                let shutdown = CancellationToken::new();
                tokio::spawn(cancel_on_signal(shutdown.clone()));
                app.run(shutdown).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Migrate(_) => {
                settings.validate()?;
                let store = store::open(&settings.database.url, 1).await?;
                store.migrate().await?;
                tracing::info!("migrations applied");
                Ok(ExitCode::SUCCESS)
            }
            Command::VerifyAudit { expect_head, .. } => {
                let store = store::open_existing(&settings.database.url).await?;
                let report =
                    store::verify_audit_chain(store.as_ref(), expect_head.as_deref()).await?;
                // One line per fault; a trigger's name comes from the file, so each is escaped.
                for line in report.to_string().lines() {
                    println!("{}", escape::terminal(line));
                }
                Ok(if report.is_intact() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
            Command::Notify {
                command: NotifyCommand::Test { channel, .. },
            } => {
                let runtime = settings.validate()?;
                akguard::notify::send_test(&runtime.notify, &channel).await?;
                println!(
                    "test message delivered to channel `{}`",
                    escape::terminal(&channel)
                );
                Ok(ExitCode::SUCCESS)
            }
            #[cfg(feature = "emulator")]
            Command::Emulator { listen, scenario } => {
                let scenario = Scenario::from_file(&scenario)?;
                let emulator = Emulator::bind(listen, scenario).await?;
                // The one line on stdout: scripts wait for it to learn the bound port.
                let mut stdout = std::io::stdout().lock();
                writeln!(
                    stdout,
                    "{}",
                    serde_json::json!({"emulator": "ready", "listen": emulator.local_addr().to_string()})
                )?;
                stdout.flush()?;
                drop(stdout);
                let shutdown = CancellationToken::new();
                tokio::spawn(cancel_on_signal(shutdown.clone()));
                emulator.run(shutdown).await?;
                Ok(ExitCode::SUCCESS)
            }
            #[cfg(feature = "emulator")]
            Command::Demo { .. } => unreachable!("handled before the runtime starts"),
            Command::CheckConfig(_)
            | Command::Incidents { .. }
            | Command::Report { .. }
            | Command::Completions { .. } => {
                unreachable!("handled before the runtime starts")
            }
        }
    })
}

/// One thread is plenty for a client that sends one request at a time.
fn client_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

#[cfg(feature = "emulator")]
/// The demo takes no `--config` and ignores the environment: it configures itself and
/// reaches only its own emulator. Its logs stay at warnings, and the worker's (which the narration
/// repeats) at errors, so the narration is readable.
fn demo(options: DemoOptions) -> anyhow::Result<ExitCode> {
    telemetry::init(&LogSettings {
        format: LogFormat::Text,
        level: "warn,akguard::worker=error".into(),
    });
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        let resolved = demo::run(options, shutdown).await?;
        Ok(if resolved {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// SIGINT or SIGTERM starts a graceful shutdown.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
    shutdown.cancel();
}
