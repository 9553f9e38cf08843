//! Weight files: safetensors through memory maps, PyTorch checkpoints, and a
//! prefix-scoped loader that checks shapes and reports missing and unused keys.
