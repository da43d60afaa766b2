//! API tokens, stored as SHA-256 hashes: a token is shown once, when created.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Registry, RegistryError};

/// A stored token (never the token itself).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TokenRow {
    pub name: String,
    pub role: String,
    /// The duty desk of an operator's token.
    pub desk: Option<String>,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// Who a valid token is.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenCheck {
    pub name: String,
    pub role: String,
    pub desk: Option<String>,
}

/// SHA-256 of the token, hex. Tokens carry 160 random bits, so a plain hash is enough.
pub fn token_hash(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random token: `tw_` and 40 hex digits.
pub fn new_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("tw_{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

impl Registry {
    /// Creates a token; returns it (the only time it is seen). A name in use (even revoked) is
    /// refused unless `replace`, which revokes the old one first.
    pub async fn create_token(&self, name: &str, role: &str, replace: bool, now: i64) -> Result<String, RegistryError> {
        self.create_desk_token(name, role, None, replace, now).await
    }

    /// Creates a token of a duty desk (`desk`: its alerts only), as [`Registry::create_token`].
    pub async fn create_desk_token(
        &self,
        name: &str,
        role: &str,
        desk: Option<&str>,
        replace: bool,
        now: i64,
    ) -> Result<String, RegistryError> {
        let mut tx = self.begin().await?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM api_tokens WHERE name = $1").bind(name).fetch_optional(&mut *tx).await?;
        if existing.is_some() {
            if !replace {
                return Err(RegistryError::Invalid(format!(
                    "a token named {name:?} exists; revoke it or pick another name"
                )));
            }
            sqlx::query("DELETE FROM api_tokens WHERE name = $1").bind(name).execute(&mut *tx).await?;
        }
        let token = new_token();
        sqlx::query("INSERT INTO api_tokens (name, role, hash, created_at_ms, desk) VALUES ($1, $2, $3, $4, $5)")
            .bind(name)
            .bind(role)
            .bind(token_hash(&token))
            .bind(now)
            .bind(desk)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The name, role and desk of a valid (not revoked) token.
    pub async fn check_token(&self, token: &str) -> Result<Option<TokenCheck>, RegistryError> {
        let r = sqlx::query("SELECT name, role, desk FROM api_tokens WHERE hash = $1 AND revoked_at_ms IS NULL")
            .bind(token_hash(token))
            .fetch_optional(self.pool())
            .await?;
        Ok(r.map(|r| {
            Ok::<_, sqlx::Error>(TokenCheck {
                name: r.try_get("name")?,
                role: r.try_get("role")?,
                desk: r.try_get("desk")?,
            })
        })
        .transpose()?)
    }

    /// Revokes a token by name; false when there is none active of that name.
    /// The hashes of every token valid now (live streams end when theirs leaves the set).
    pub async fn valid_token_hashes(&self) -> Result<std::collections::HashSet<String>, RegistryError> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT hash FROM api_tokens WHERE revoked_at_ms IS NULL")
            .fetch_all(self.pool())
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// Whether the token with this hash is valid now.
    pub async fn token_hash_valid(&self, hash: &str) -> Result<bool, RegistryError> {
        let n: Option<i64> = sqlx::query_scalar("SELECT 1 FROM api_tokens WHERE hash = $1 AND revoked_at_ms IS NULL")
            .bind(hash)
            .fetch_optional(self.pool())
            .await?;
        Ok(n.is_some())
    }

    pub async fn revoke_token(&self, name: &str, now: i64) -> Result<bool, RegistryError> {
        let mut tx = self.begin().await?;
        let r = sqlx::query("UPDATE api_tokens SET revoked_at_ms = $2 WHERE name = $1 AND revoked_at_ms IS NULL")
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>, RegistryError> {
        let rows = sqlx::query("SELECT name, role, desk, created_at_ms, revoked_at_ms FROM api_tokens ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenRow {
                    name: r.try_get("name")?,
                    role: r.try_get("role")?,
                    desk: r.try_get("desk")?,
                    created_at_ms: r.try_get("created_at_ms")?,
                    revoked_at_ms: r.try_get("revoked_at_ms")?,
                })
            })
            .collect()
    }
}
