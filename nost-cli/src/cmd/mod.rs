//! One module per subcommand.
pub mod check;
pub mod listen;
pub mod logger;
pub mod publish;
pub mod run;
pub mod token;
