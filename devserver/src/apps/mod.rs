//! The devserver's apps, each an ordinary socket route built with the embedding API.

pub mod chat;
pub mod echo;
pub mod gateway;
