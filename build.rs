//! Migrations are embedded by `sqlx::migrate!` when the crate compiles: a new or changed migration
//! file must rebuild it, or a test binary keeps the schema it was first built with.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
