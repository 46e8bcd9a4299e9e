//! Compiles `proto/*.proto` with `protox` (pure Rust, no system `protoc`) and generates the
//! Rust types with `prost-build`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/request-reply.proto",
        "proto/types.proto",
        "proto/kafka-egress.proto",
        "proto/kinesis-egress.proto",
        "proto/ingress.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
