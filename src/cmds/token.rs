//! `tianwang token create|list|revoke`: API tokens (a new one is printed once and stored hashed).

use std::process::ExitCode;

use tianwang::registry::Registry;

use super::{DbArg, now_ms};

#[derive(clap::Subcommand)]
pub enum TokenCmd {
    /// Create a token and print it (it is stored hashed and never shown again).
    Create {
        #[arg(long, value_enum)]
        role: tianwang::api::auth::Role,
        /// A unique name (who or what uses it); shown in audit trails.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// List tokens (names, roles, revoked or not; never the tokens).
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Revoke a token by name.
    Revoke {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
}

pub async fn run(cmd: TokenCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCmd::Create { role, name, db } => {
            if name.trim().is_empty() {
                anyhow::bail!("--name: empty");
            }
            let reg = Registry::open(&db.url).await?;
            let t = reg.create_token(name.trim(), role.as_str(), false, now_ms()).await?;
            reg.close().await;
            println!("{t}");
            eprintln!("token {:?} ({}) created; it is shown only now", name.trim(), role.as_str());
        }
        TokenCmd::List { db } => {
            let reg = Registry::open(&db.url).await?;
            for t in reg.list_tokens().await? {
                let state = if t.revoked_at_ms.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{state}", t.name, t.role);
            }
            reg.close().await;
        }
        TokenCmd::Revoke { name, db } => {
            let reg = Registry::open(&db.url).await?;
            let done = reg.revoke_token(&name, now_ms()).await?;
            reg.close().await;
            if !done {
                anyhow::bail!("no active token named {name:?}");
            }
            println!("revoked {name:?}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
