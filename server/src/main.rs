use clap::Parser as _;
use tallydesk_server::config::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The log is diagnostics, on standard error; standard output carries what a command
    // answers (e.g. the kid `rotate-keys` prints), so scripts can read it.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => tallydesk_server::serve(&cli.config).await,
        Command::SeedDemo { admin_email } => {
            tallydesk_server::seed::run(&cli.config, admin_email.as_deref()).await
        }
        Command::CreateAdmin { email, name } => {
            tallydesk_server::admin::run(&cli.config, &email, name.as_deref()).await
        }
        Command::RotateKeys => tallydesk_server::admin::rotate_keys(&cli.config).await,
    }
}
