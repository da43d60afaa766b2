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
        /// The duty desk (`[[desk]]` id in site.toml) of an operator's token: it sees and
        /// handles the alerts that reached that desk only.
        #[arg(long)]
        desk: Option<String>,
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
        TokenCmd::Create { role, name, desk, db } => {
            if name.trim().is_empty() {
                anyhow::bail!("--name: empty");
            }
            let desk = desk.map(|d| d.trim().to_string());
            if let Some(d) = &desk {
                if role != tianwang::api::auth::Role::Operator {
                    anyhow::bail!("--desk: a duty desk's token is an operator's (--role operator)");
                }
                if d.is_empty() || !d.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                    anyhow::bail!("--desk: {d:?} is not a desk id (letters, digits, '-', '_' and '.')");
                }
            }
            let reg = Registry::open(&db.url).await?;
            let t = reg.create_desk_token(name.trim(), role.as_str(), desk.as_deref(), false, now_ms()).await?;
            reg.close().await;
            println!("{t}");
            match &desk {
                Some(d) => {
                    eprintln!("token {:?} ({}, desk {d}) created; it is shown only now", name.trim(), role.as_str())
                }
                None => eprintln!("token {:?} ({}) created; it is shown only now", name.trim(), role.as_str()),
            }
        }
        TokenCmd::List { db } => {
            let reg = Registry::open(&db.url).await?;
            for t in reg.list_tokens().await? {
                let state = if t.revoked_at_ms.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{}\t{state}", t.name, t.role, t.desk.as_deref().unwrap_or("-"));
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
