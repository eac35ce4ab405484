// swift-tools-version:6.0
// libFuzzer targets for dma-trace: built only by Scripts/fuzz.sh with
// `swift build --sanitize=fuzzer --sanitize=address`, never by the main package's
// `swift build` / `swift test` (libFuzzer supplies `main`). See Docs/fuzzing.md.
import PackageDescription

let fuzzTargets = ["FuzzTextReader", "FuzzRecordDecoder", "FuzzPageReader", "FuzzAuditConfig", "FuzzBaseline"]

let package = Package(
    name: "dma-trace-fuzz",
    dependencies: [
        .package(name: "dma-trace", path: ".."),
    ],
    targets: fuzzTargets.map { name in
        .executableTarget(
            name: name,
            dependencies: [.product(name: "DMATrace", package: "dma-trace")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        )
    },
    swiftLanguageModes: [.v6]
)
