import Foundation
@testable import DMATrace

/// Raw ring-buffer record payloads (common fields first, as libtracecmd hands them
/// over) decoded with the event formats of real recordings. The first byte picks the
/// recording whose formats apply; seeds are real records (Fuzz/Tools/extract-records.c).
private let formatTraces = [
    "k6.12-stacks.dat",                        // 0: 6.12 formats, kernel_stack, print
    "k6.12-iommu.dat",                         // 1: iommu map/unmap
    "k6.12-swiotlb.dat",                       // 2: swiotlb_bounced
    "k7.3-nvme-e1000e-ahci-xhci.dat",          // 3: 7.x formats (dma_map_phys)
    "faultinject/x86-7.3-swiotlb.dat",         // 4: 7.x syncs and frees
    "faultinject/arm64-6.12-noncoherent.dat",  // 5: arm64, syncs
]

private let samples = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("SampleTraces")

/// Opened once; each reader keeps its libtraceevent handle alive for the whole run.
nonisolated(unsafe) private let readers: [TraceDatReader] = formatTraces.map { name in
    do {
        return try TraceDatReader(path: samples.appendingPathComponent(name).path)
    } catch {
        fatalError("fuzz setup: \(error)")
    }
}

/// Opening six recordings (kallsyms and all) under AddressSanitizer takes longer than
/// libFuzzer's per-input timeout allows: done before the first input.
@_cdecl("LLVMFuzzerInitialize")
public func initializeRecordDecoder(_ argc: UnsafeMutablePointer<CInt>,
                                    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    _ = readers.count
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecordDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let reader = readers[Int(data[0]) % readers.count]
    // A fresh decoder per input: its comm and symbol caches must not grow over a campaign.
    guard var decoder = reader.makeDecoder() else { fatalError("fuzz setup: no decoder") }
    let payload = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    var stats = IngestStats()
    _ = decoder.decode(payload: payload, timestamp: 1, cpu: 0, stats: &stats)
    _ = decoder.decodeStack(payload: payload)
    return 0
}
