import Foundation
import Testing
@testable import DMATrace

/// Real drivers that the other recordings do not have (SampleTraces/drivers/, made by
/// SampleTraces/lab/record-drivers.sh; provenance and per-device counts in
/// SampleTraces/drivers/MANIFEST.md): e1000, 8139cp, megaraid_sas, sym53c8xx, EHCI +
/// usb-storage, sdhci-pci, snd_hda_intel, virtio-blk with iommu_platform, and vivid on
/// videobuf2-dma-contig, on x86 (plain, intel-iommu, swiotlb=force) and non-coherent arm64.
@Suite struct DriverRecordingTests {
    struct Recording: Sendable, CustomTestStringConvertible {
        var file: String
        var arch: String
        var variant: String
        /// vivid's syncs of its dma_alloc_noncontiguous() buffers are traced here: only on
        /// non-coherent arm64. On x86 the device is coherent, so dma_setup_need_sync() sets
        /// dma_skip_sync and only a swiotlb bounce of a streaming mapping clears it again;
        /// vivid never maps, so even swiotlb=force leaves its syncs untraced.
        var vividSyncsTraced: Bool
        /// Phases in which the real videobuf2-dma-contig bug F3 is visible (4 buffers each):
        /// the exporter maps the importer's attachment with DMA_ATTR_SKIP_CPU_SYNC and never
        /// syncs it (vb2_dc_dmabuf_ops_map/_detach; begin/end_cpu_access return 0), which loses
        /// the importer's writes when that mapping is bounced (swiotlb=force: both share
        /// phases) or the buffer is cacheable on a non-coherent platform (arm64: the
        /// noncontiguous share phase). See SampleTraces/README.md, drivers section.
        var unsyncedSharePhases: [String] = []
        var path: String { Fixtures.samples.appendingPathComponent("drivers/" + file).path }
        var testDescription: String { file }
    }

    static let recordings: [Recording] = [
        Recording(file: "x86-6.12-plain.dat", arch: "x86", variant: "plain", vividSyncsTraced: false),
        Recording(file: "x86-6.12-iommu.dat", arch: "x86", variant: "iommu", vividSyncsTraced: false),
        Recording(file: "x86-7.3-plain.dat", arch: "x86", variant: "plain", vividSyncsTraced: false),
        Recording(file: "x86-7.3-iommu.dat", arch: "x86", variant: "iommu", vividSyncsTraced: false),
        Recording(file: "x86-7.3-swiotlb.dat", arch: "x86", variant: "swiotlb", vividSyncsTraced: false,
                  unsyncedSharePhases: ["vivid-share-coherent", "vivid-share-noncoherent"]),
        Recording(file: "arm64-6.12-noncoherent.dat", arch: "arm64", variant: "noncoherent", vividSyncsTraced: true,
                  unsyncedSharePhases: ["vivid-share-noncoherent"]),
        Recording(file: "arm64-7.3-noncoherent.dat", arch: "arm64", variant: "noncoherent", vividSyncsTraced: true,
                  unsyncedSharePhases: ["vivid-share-noncoherent"]),
    ]

    /// videobuf2-dma-contig's exporter maps the importer's attachment with
    /// DMA_ATTR_SKIP_CPU_SYNC and nothing ever syncs it (bug F3 below).
    static func isUnsyncedShare(_ f: Finding) -> Bool {
        f.rule == "missing-sync" && f.device == "vivid.0" && f.severity >= .warning
    }

    /// The confirmed real bug F3: exactly 4 missing-sync warnings (one per shared buffer) in
    /// each phase the recording can show it, and none elsewhere.
    @Test(arguments: recordings)
    func videobuf2ExporterNeverSyncsTheImportersMapping(_ rec: Recording) throws {
        let result = try Analyzer.analyze(path: rec.path)
        let real = result.findings.filter(Self.isUnsyncedShare)
        var perPhase: [String: Int] = [:]
        for f in real { perPhase[f.marker.map { String($0.dropFirst("LAB: phase ".count)) } ?? "-", default: 0] += 1 }
        #expect(perPhase == Dictionary(uniqueKeysWithValues: rec.unsyncedSharePhases.map { ($0, 4) }), "\(rec.file)")
        #expect(real.allSatisfy { $0.message.contains("SKIP_CPU_SYNC") && $0.message.contains("never synced") })
    }

    @Test(arguments: recordings)
    func correctDriversGiveNothingAtWarningOrAbove(_ rec: Recording) throws {
        let result = try Analyzer.analyze(path: rec.path)
        #expect(result.lostGaps.isEmpty)
        #expect(result.stats.malformedRecords == 0)
        // Correct behaviour that earlier models got wrong: syncs of dma_alloc_noncontiguous()
        // memory (vb2_dc_prepare/vb2_dc_finish; dma_alloc_noncontiguous() registers it with
        // debug_dma_map_sg()), the dma-buf export of coherent and noncontiguous memory
        // (vb2_dc_get_base_sgt, vb2_dc_dmabuf_ops_map with SKIP_CPU_SYNC), and an unbounced
        // importer mapping of coherent memory on non-coherent arm64, which the CPU reaches only
        // through its coherent mappings. Only the real bug F3 may be loud.
        let loud = result.findings.filter { $0.severity >= .warning && !Self.isUnsyncedShare($0) }
        let unexpected = loud.map { "\($0.device) \($0.rule) [\($0.marker ?? "-")]: \($0.message)" }
        #expect(unexpected.isEmpty, "\(rec.file)")
    }

    /// Per-device counts from MANIFEST.md, which describe.sh took from `trace-cmd report`
    /// (the host's libtraceevent, not this tool's reader): "   COUNT EVENT DEVICE (DRIVER)".
    static func manifestCounts(_ file: String) throws -> [String: [String: UInt64]] {
        let text = try String(contentsOf: Fixtures.samples.appendingPathComponent("drivers/MANIFEST.md"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(of: "## \(file)"[...]) else { return [:] }
        var counts: [String: [String: UInt64]] = [:]
        var inBlock = false
        for line in lines[(start + 1)...] {
            if line.hasPrefix("## ") { break }
            if line.hasPrefix("- dma/swiotlb events per device") { inBlock = true; continue }
            guard inBlock else { continue }
            if line == "```" { if !counts.isEmpty { break } else { continue } }
            let parts = line.split(separator: " ")
            guard parts.count >= 3, let n = UInt64(parts[0]) else { continue }
            counts[String(parts[2]), default: [:]][String(parts[1]), default: 0] += n
        }
        return counts
    }

    @Test(arguments: recordings)
    func deviceCountsMatchTheManifest(_ rec: Recording) throws {
        let manifest = try Self.manifestCounts(rec.file)
        // 8 PCI devices (7 under intel-iommu, without the lsi53c895a) and vivid.0
        #expect(manifest.count == (rec.variant == "iommu" ? 8 : 9), "\(rec.file): devices in MANIFEST.md")
        let result = try Analyzer.analyze(path: rec.path)
        for d in result.devices {
            let m = try #require(manifest[d.name], "\(d.name) not in MANIFEST.md")
            func sum(_ names: String...) -> UInt64 { names.reduce(0) { $0 + (m[$1] ?? 0) } }
            #expect(d.maps == sum("dma_map_page", "dma_map_sg", "dma_map_phys", "dma_map_resource"), "\(d.name) maps")
            #expect(d.sgMaps == sum("dma_map_sg"), "\(d.name) sg maps")
            #expect(d.unmaps == sum("dma_unmap_page", "dma_unmap_sg", "dma_unmap_phys", "dma_unmap_resource"), "\(d.name) unmaps")
            #expect(d.allocs == sum("dma_alloc", "dma_alloc_pages", "dma_alloc_sgt"), "\(d.name) allocs")
            #expect(d.frees == sum("dma_free", "dma_free_pages", "dma_free_sgt"), "\(d.name) frees")
            #expect(d.bounces == sum("swiotlb_bounced"), "\(d.name) bounces")
            #expect(d.syncsForCPU == sum("dma_sync_single_for_cpu", "dma_sync_sg_for_cpu"), "\(d.name) syncs for cpu")
            #expect(d.syncsForDevice == sum("dma_sync_single_for_device", "dma_sync_sg_for_device"), "\(d.name) syncs for device")
        }
        #expect(Set(result.devices.map(\.name)) == Set(manifest.keys))
    }

    /// What each recording is for: the API families its drivers really used.
    @Test(arguments: recordings)
    func theRecordingExercisesItsFamilies(_ rec: Recording) throws {
        let events = try Fixtures.events(path: rec.path)
        func on(_ device: String) -> [DMAEventKind] { events.filter { $0.device == device }.map(\.kind) }
        // vivid (videobuf2-dma-contig): 4 coherent buffers, then 4 dma_alloc_noncontiguous()
        // ones, each once for capture and once for sharing.
        let vivid = on("vivid.0")
        let sgtAllocs = vivid.filter { if case .alloc(let a) = $0 { a.api == .sgt } else { false } }
        let coherentAllocs = vivid.filter { if case .alloc(let a) = $0 { a.api == .coherent } else { false } }
        let sgtFrees = vivid.filter { if case .free(let f) = $0 { f.api == .sgt } else { false } }
        #expect(sgtAllocs.count == 8 && sgtFrees.count == 8 && coherentAllocs.count == 8)
        // The share phases: each exported buffer is mapped for the importer with
        // SKIP_CPU_SYNC (vb2_dc_dmabuf_ops_map) and unmapped so at detach.
        let shared = vivid.compactMap { if case .mapSG(let m) = $0 { m } else { nil } }
        let unshared = vivid.compactMap { if case .unmapSG(let u) = $0 { u } else { nil } }
        #expect(shared.count == 8 && shared.allSatisfy { $0.attrs.contains(.skipCPUSync) })
        #expect(unshared.count == 8 && unshared.allSatisfy { $0.attrs.contains(.skipCPUSync) })
        let vividSGSyncs = vivid.filter { if case .sync(let s) = $0 { s.scatterGather } else { false } }
        #expect(vividSGSyncs.isEmpty != rec.vividSyncsTraced, "vivid sg syncs: \(vividSGSyncs.count)")
        // SCSI, USB storage and SD: scatterlists.
        for dev in ["0000:00:07.0", "0000:00:08.0", "0000:00:09.0", "0000:00:0a.0"]
        where dev != "0000:00:08.0" || rec.variant != "iommu" {
            #expect(on(dev).contains { if case .mapSG = $0 { true } else { false } }, "\(dev) sg maps")
        }
        let result = try Analyzer.analyze(path: rec.path)
        let byName = Dictionary(uniqueKeysWithValues: result.devices.map { ($0.name, $0) })
        switch (rec.arch, rec.variant) {
        case ("x86", "plain"):
            // 6 GiB guest, 4 of them above 4 GiB: 32-bit DMA masks bounce without swiotlb=force
            // (e1000 on conventional PCI, EHCI without 64-bit DMA, sdhci).
            for dev in ["0000:00:05.0", "0000:00:09.0", "0000:00:0a.0"] {
                #expect((byName[dev]?.bounces ?? 0) > 0, "\(dev) bounces")
            }
        case ("x86", "iommu"):
            for dev in ["0000:00:05.0", "0000:00:07.0", "0000:00:09.0", "0000:00:0c.0"] {
                #expect(byName[dev]?.path == .iommu, "\(dev) path")
            }
            #expect(events.contains { if case .iommuMap = $0.kind { true } else { false } })
        case ("x86", "swiotlb"):
            #expect(byName["0000:00:07.0"]?.path == .bounce)
        default:
            // Non-coherent arm64: e1000's copybreak syncs for the CPU are traced.
            #expect((byName["0000:00:05.0"]?.syncsForCPU ?? 0) > 0)
            #expect(byName["0000:00:05.0"]?.coherence == .nonCoherent)
        }
    }
}
