// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "dma-trace",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dma-trace", targets: ["dma-trace"]),
        .library(name: "DMATrace", targets: ["DMATrace"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CTraceCmd",
            pkgConfig: "libtracecmd",
            providers: [.apt(["libtracecmd-dev", "libtraceevent-dev", "libtracefs-dev"])]
        ),
        .systemLibrary(
            name: "CCompression",
            providers: [.apt(["libzstd-dev", "zlib1g-dev"])]
        ),
        .target(
            name: "CTraceShim",
            dependencies: ["CTraceCmd"],
            cSettings: [
                .unsafeFlags(["-I/usr/include/trace-cmd", "-I/usr/include/traceevent", "-I/usr/include/tracefs"]),
            ]
        ),
        // elfutils' libdw for DWARF (stack frames to source lines); only CDebugInfoShim uses it.
        .systemLibrary(
            name: "CDwarf",
            pkgConfig: "libdw",
            providers: [.apt(["libdw-dev"])]
        ),
        .target(
            name: "CDebugInfoShim",
            dependencies: ["CDwarf"]
        ),
        .target(
            name: "DMATrace",
            dependencies: [
                "CTraceCmd", "CTraceShim", "CDebugInfoShim", "CCompression",
                .product(name: "Yams", package: "Yams"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: [
                // The replay mutates a handful of class-held tables per event; dynamic
                // exclusivity checks on them cost ~6% in release builds (Scripts/bench.sh).
                .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
            ]
        ),
        .executableTarget(
            name: "dma-trace",
            dependencies: [
                "DMATrace",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            // jemalloc (Debian libjemalloc-dev) for the whole process: the reader thread
            // allocates every event and the replay thread frees it, a pattern that makes glibc
            // lock the reader's arena on most frees (18% of the replay's instructions were
            // glibc malloc and free; Scripts/bench.sh). Not under a sanitizer
            // (DMA_TRACE_SYSTEM_MALLOC=1, Scripts/sanitize.sh): the sanitizer's allocator takes
            // malloc and free but not jemalloc's C++ operator new, and the runtime's strings
            // then free memory the sanitizer never handed out.
            linkerSettings: Context.environment["DMA_TRACE_SYSTEM_MALLOC"] == nil ? [.linkedLibrary("jemalloc")] : []
        ),
        .testTarget(
            name: "DMATraceTests",
            dependencies: ["DMATrace", "CTraceCmd", "CCompression"],
            resources: []
        ),
    ],
    swiftLanguageModes: [.v6]
)
