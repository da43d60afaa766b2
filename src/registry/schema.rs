//! A normalised text dump of the schema, to compare a migrated database with the expected one.

use sqlx::Row;

use super::{Backend, Registry, RegistryError};

/// One line per table column and per index, sorted; stable across runs of the same migrations.
pub async fn schema_dump(reg: &Registry) -> Result<String, RegistryError> {
    let mut lines: Vec<String> = Vec::new();
    match reg.backend() {
        Backend::Sqlite => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
            )
            .fetch_all(reg.pool())
            .await?;
            for t in tables {
                let cols = sqlx::query(&format!(
                    "SELECT name, type, \"notnull\", pk FROM pragma_table_info('{t}') ORDER BY cid"
                ))
                .fetch_all(reg.pool())
                .await?;
                for c in cols {
                    let name: String = c.try_get(0)?;
                    let ty: String = c.try_get(1)?;
                    let notnull: i64 = c.try_get(2)?;
                    let pk: i64 = c.try_get(3)?;
                    lines.push(format!(
                        "column {t}.{name} {ty}{}{}",
                        if notnull != 0 { " not null" } else { "" },
                        if pk != 0 { " pk" } else { "" }
                    ));
                }
            }
            let idx = sqlx::query(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
            )
            .fetch_all(reg.pool())
            .await?;
            for i in idx {
                let name: String = i.try_get(0)?;
                let sql: String = i.try_get(1)?;
                lines.push(format!("index {name}: {}", sql.split_whitespace().collect::<Vec<_>>().join(" ")));
            }
            let triggers: Vec<(String, String)> =
                sqlx::query_as("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
                    .fetch_all(reg.pool())
                    .await?;
            for (name, table) in triggers {
                lines.push(format!("trigger {name} on {table}"));
            }
        }
        Backend::Postgres => {
            let cols = sqlx::query(
                "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations' ORDER BY table_name, ordinal_position",
            )
            .fetch_all(reg.pool())
            .await?;
            for c in cols {
                let t: String = c.try_get(0)?;
                let name: String = c.try_get(1)?;
                let ty: String = c.try_get(2)?;
                let nullable: String = c.try_get(3)?;
                lines.push(format!("column {t}.{name} {ty}{}", if nullable == "NO" { " not null" } else { "" }));
            }
            let idx = sqlx::query(
                "SELECT indexname::text, indexdef::text FROM pg_indexes WHERE schemaname = current_schema() \
                 AND tablename <> '_sqlx_migrations' ORDER BY indexname",
            )
            .fetch_all(reg.pool())
            .await?;
            for i in idx {
                let name: String = i.try_get(0)?;
                let def: String = i.try_get(1)?;
                let def = def.replace(&format!("{}.", current_schema(reg).await?), "");
                lines.push(format!("index {name}: {def}"));
            }
            let triggers: Vec<(String, String)> = sqlx::query_as(
                "SELECT DISTINCT trigger_name::text, event_object_table::text FROM information_schema.triggers \
                 WHERE trigger_schema = current_schema() ORDER BY 1",
            )
            .fetch_all(reg.pool())
            .await?;
            for (name, table) in triggers {
                lines.push(format!("trigger {name} on {table}"));
            }
        }
    }
    lines.sort();
    Ok(lines.join("\n") + "\n")
}

async fn current_schema(reg: &Registry) -> Result<String, RegistryError> {
    Ok(sqlx::query_scalar("SELECT current_schema()::text").fetch_one(reg.pool()).await?)
}
