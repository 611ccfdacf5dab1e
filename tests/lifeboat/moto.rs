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

    /// Forget every resource.
    pub fn reset(&self) {
        self.0.reset().expect("reset the emulator");
    }
}
