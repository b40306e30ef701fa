// swift-tools-version: 6.1
// The libFuzzer targets. A package of their own, so the root package's `swift build` and
// `swift test` never see them: they only link with `--sanitize=fuzzer`, which provides `main`.
// Build and run them with `Fuzz/run.sh` (README.md in this folder).
import PackageDescription

let package = Package(
    name: "gearlock-fuzz",
    dependencies: [
        .package(name: "gearlock", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    ],
    targets: [
        .executableTarget(
            name: "PacketDecoderFuzzer",
            dependencies: [
                .product(name: "GearmanProtocol", package: "gearlock"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "ACLParserFuzzer",
            dependencies: [.product(name: "GearmanACL", package: "gearlock")]
        ),
    ]
)
