//! The `hitvideo` application: the desktop studio (eframe/egui) and the headless CLI, both
//! thin layers over `hitvideo-engine`. See `app/README.md`.

pub mod cli;
pub mod studio;
