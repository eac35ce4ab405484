/// What the trace lets the tool infer about the platform, each with its evidence and how
/// sure the inference is. A judgement that rests on a weak fact is at most a warning and
/// names the fact it assumed.
public struct PlatformFact: Sendable, Codable, Hashable {
    public enum Confidence: String, Sendable, Codable, Comparable {
        /// Shown by the trace itself (the kernel release, iommu:map events serving the address).
        case proven
        /// A structural inference that holds on every kernel we know (an address class).
        case strong
        /// Consistent with the trace, but another explanation fits too.
        case weak

        private var rank: Int { self == .proven ? 2 : self == .strong ? 1 : 0 }
        public static func < (a: Confidence, b: Confidence) -> Bool { a.rank < b.rank }
    }

    public var name: String
    public var value: String
    public var confidence: Confidence
    public var evidence: String

    public init(name: String, value: String, confidence: Confidence, evidence: String) {
        self.name = name
        self.value = value
        self.confidence = confidence
        self.evidence = evidence
    }

    /// "coherence: non-coherent (strong: ...)", for findings that assumed it.
    public var assumption: String { "assumed \(name): \(value) (\(confidence.rawValue): \(evidence))" }
}

/// The CPU architecture of the traced kernel, from the strongest evidence seen.
public struct ArchitectureFact: Sendable, Codable, Hashable {
    public enum Arch: String, Sendable, Codable { case x86_64, arm64, riscv64, other }
    public var arch: Arch
    public var confidence: PlatformFact.Confidence
    public var evidence: String

    /// x86 PCI DMA is cache-coherent by architecture: syncs seen there come from swiotlb
    /// (swiotlb_tbl_map_single clears dev->dma_skip_sync), never from cache maintenance.
    public var isCoherentByArchitecture: Bool { arch == .x86_64 }

    /// From `uname -r` as trace.dat stores it (Debian: "6.12.117+deb13-amd64").
    public static func fromRelease(_ release: String?) -> ArchitectureFact? {
        guard let r = release?.lowercased() else { return nil }
        let map: [(String, Arch)] = [("amd64", .x86_64), ("x86_64", .x86_64), ("arm64", .arm64), ("aarch64", .arm64),
                                     ("riscv64", .riscv64)]
        for (token, arch) in map where r.contains(token) {
            return ArchitectureFact(arch: arch, confidence: .proven, evidence: "the kernel release \(release!) recorded in the trace")
        }
        return nil
    }

    /// From an unhashed kernel virtual address (a dma_alloc CPU address): arm64's linear map
    /// lies in 0xffff000000000000..<0xffff800000000000, which is non-canonical on 4-level x86-64;
    /// x86-64 with 5-level paging keeps its direct map (KASLR-placed) in 0xff11000000000000..<0xff91000000000000, below anything arm64 uses.
    public static func fromKernelAddress(_ va: UInt64) -> ArchitectureFact? {
        if va >= 0xFFFF_0000_0000_0000 && va < 0xFFFF_8000_0000_0000 {
            return ArchitectureFact(arch: .arm64, confidence: .strong,
                                    evidence: "kernel address \(hex(va)) lies in arm64's linear map, which is not canonical on x86-64")
        }
        if va >= 0xFF10_0000_0000_0000 && va < 0xFF91_0000_0000_0000 {
            return ArchitectureFact(arch: .x86_64, confidence: .strong,
                                    evidence: "kernel address \(hex(va)) lies in x86-64's 5-level direct map")
        }
        if va >= 0xFFFF_8880_0000_0000 && va < 0xFFFF_C880_0000_0000 {
            // x86-64's 4-level direct map; on arm64 the same range is vmalloc space.
            return ArchitectureFact(arch: .x86_64, confidence: .weak,
                                    evidence: "kernel address \(hex(va)) lies where x86-64 keeps its direct map (arm64 keeps vmalloc there)")
        }
        return nil
    }
}

/// How a device's bus addresses relate to physical addresses, learned segment by segment.
struct AddressTranslation {
    /// dma - phys of the first translated segment, while every later one agreed.
    private(set) var commonOffset: UInt64?
    private(set) var disagreeing = false
    private(set) var translated: UInt64 = 0

    mutating func note(dma: UInt64, phys: UInt64) {
        guard dma != phys else { return }
        translated += 1
        let delta = dma &- phys
        if let c = commonOffset {
            if c != delta { disagreeing = true }
        } else if !disagreeing {
            commonOffset = delta
        }
    }

    /// A constant offset (dma = phys + C, a dma_range_map such as the Raspberry Pi's 0xc0000000)
    /// seen on at least two segments and never contradicted.
    var busOffset: UInt64? { !disagreeing && translated >= 2 ? commonOffset : nil }
}
