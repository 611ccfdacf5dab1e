//! The emulator for the tests: the library's, failing the test if it
//! cannot start.

use lifeboat::emulator::Emulator;

/// A running emulator, stopped when dropped.
pub struct Moto(Emulator);

impl Moto {
    /// Install (first time) and start the emulator.
    pub fn start() -> Moto {
        Moto(Emulator::install_and_start().expect("start the AWS emulator"))
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        self.0.endpoint()
    }

    /// Clients bound to the emulator.
    pub async fn clients(&self) -> lifeboat::aws::AwsClients {
        self.0.clients().await
    }

    /// `lifeboat` with this state dir, pointed at the emulator with its
    /// dummy keys (never at AWS: no profile, no instance metadata).
    pub fn lifeboat(&self, state: &std::path::Path) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_lifeboat"));
        command
            .env("LIFEBOAT_STATE_DIR", state)
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("AWS_PROFILE")
            .stdin(std::process::Stdio::null());
        command
    }

    /// Forget every resource.
    pub fn reset(&self) {
        self.0.reset().expect("reset the emulator");
    }
}
