//! The `akguard` command line: thin, everything lives in the library.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use akguard::app::App;
use akguard::cloud::emulator::{Emulator, Scenario};
use akguard::config::{LogFormat, LogSettings, Settings};
use akguard::demo::DemoOptions;
use akguard::escape;
use akguard::store;
use akguard::telemetry;
use anyhow::Context;
use tokio_util::sync::CancellationToken;

const USAGE: &str = "\
akguard: responds automatically when an Alibaba Cloud AccessKey pair leaks

Usage:
  akguard demo [--exit] [--listen ADDR]  watch a leak handled end to end against the emulator
  akguard serve        [--config FILE]   run the daemon
  akguard check-config [--config FILE]   print the effective settings, secrets redacted
  akguard migrate      [--config FILE]   apply database migrations and exit
  akguard verify-audit [--config FILE] [--expect-head HASH]
                                        check the audit log's hash chain, its anchor and
                                        triggers, and that HASH (a head recorded earlier) is in it
  akguard emulator --listen ADDR --scenario FILE
                                        run the Alibaba Cloud emulator (for tests and rehearsals)

Settings come from built-in defaults, then FILE, then AKGUARD__SECTION__KEY variables.";

enum Command {
    Demo(DemoOptions),
    Serve,
    CheckConfig,
    Migrate,
    VerifyAudit {
        expect_head: Option<String>,
    },
    Emulator {
        listen: SocketAddr,
        scenario: PathBuf,
    },
}

fn parse_args(args: &[String]) -> Result<(Command, Option<PathBuf>), String> {
    let (command, rest) = args.split_first().ok_or("a command is required")?;
    if command == "emulator" {
        return parse_emulator_args(rest).map(|command| (command, None));
    }
    if command == "demo" {
        return parse_demo_args(rest).map(|command| (command, None));
    }
    let mut command = match command.as_str() {
        "serve" => Command::Serve,
        "check-config" => Command::CheckConfig,
        "migrate" => Command::Migrate,
        "verify-audit" => Command::VerifyAudit { expect_head: None },
        other => return Err(format!("unknown command `{other}`")),
    };
    let mut config = None;
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        match (flag.as_str(), &mut command) {
            ("--config", _) => {
                config = Some(PathBuf::from(rest.next().ok_or("--config needs a file")?));
            }
            ("--expect-head", Command::VerifyAudit { expect_head }) => {
                *expect_head = Some(rest.next().ok_or("--expect-head needs a hash")?.clone());
            }
            (other, _) => return Err(format!("unexpected argument `{other}`")),
        }
    }
    Ok((command, config))
}

/// `--listen ADDR --scenario FILE`, both required, in either order.
fn parse_emulator_args(rest: &[String]) -> Result<Command, String> {
    let (mut listen, mut scenario) = (None, None);
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        let value = match flag.as_str() {
            "--listen" | "--scenario" => rest.next().ok_or(format!("{flag} needs a value"))?,
            other => return Err(format!("unexpected argument `{other}`")),
        };
        if flag == "--listen" {
            let addr = value
                .parse()
                .map_err(|_| format!("--listen `{value}` is not an address like 127.0.0.1:0"))?;
            listen = Some(addr);
        } else {
            scenario = Some(PathBuf::from(value));
        }
    }
    Ok(Command::Emulator {
        listen: listen.ok_or("emulator needs --listen ADDR")?,
        scenario: scenario.ok_or("emulator needs --scenario FILE")?,
    })
}

/// `[--exit] [--listen ADDR]`; the daemon listens on a free port unless told otherwise.
fn parse_demo_args(rest: &[String]) -> Result<Command, String> {
    let mut options = DemoOptions {
        exit: false,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let mut rest = rest.iter();
    while let Some(flag) = rest.next() {
        match flag.as_str() {
            "--exit" => options.exit = true,
            "--listen" => {
                let value = rest.next().ok_or("--listen needs a value")?;
                options.listen = value.parse().map_err(|_| {
                    format!("--listen `{value}` is not an address like 127.0.0.1:8080")
                })?;
            }
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    Ok(Command::Demo(options))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("akguard {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let (command, config) = match parse_args(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(command, config) {
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

fn run(command: Command, config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    if let Command::Demo(options) = command {
        return demo(options);
    }
    let settings = Settings::load(config.as_deref())?;
    if let Command::CheckConfig = command {
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
            Command::Serve => {
                let app = App::build(&settings).await?;
                let shutdown = CancellationToken::new();
                tokio::spawn(cancel_on_signal(shutdown.clone()));
                app.run(shutdown).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Migrate => {
                settings.validate()?;
                let store = store::open(&settings.database.url, 1).await?;
                store.migrate().await?;
                tracing::info!("migrations applied");
                Ok(ExitCode::SUCCESS)
            }
            Command::VerifyAudit { expect_head } => {
                let store = store::open(&settings.database.url, 1).await?;
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
            Command::CheckConfig | Command::Demo(_) => {
                unreachable!("handled before the runtime starts")
            }
        }
    })
}

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
        let resolved = akguard::demo::run(options, shutdown).await?;
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
