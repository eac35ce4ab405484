/// Whether the trace shows the driver releasing its device (unbind, remove):
/// it freed most of the coherent memory it allocated before its first
/// streaming map (its rings and queues), and mapped nothing after that.
/// A driver that frees a scratch buffer at run time does not qualify.
struct DeviceActivity {
    private var firstMap: [String: UInt64] = [:]
    private var lastMap: [String: UInt64] = [:]
    private var lastFree: [String: UInt64] = [:]
    /// Ids of allocations made before the device's first map.
    private var probeAllocations: [String: Set<Int>] = [:]
    private var probeFreed: [String: Int] = [:]

    mutating func note(_ fact: ModelFact) {
        switch fact {
        case .mapped(let m):
            if firstMap[m.device] == nil { firstMap[m.device] = m.mappedAt }
            lastMap[m.device] = m.mappedAt
        case .allocated(let a):
            if firstMap[a.device] == nil { probeAllocations[a.device, default: []].insert(a.id) }
        case .freed(let a, let e, _):
            lastFree[a.device] = e.timestamp
            if probeAllocations[a.device]?.contains(a.id) == true { probeFreed[a.device, default: 0] += 1 }
        default:
            break
        }
    }

    func tornDown(_ device: String) -> Bool {
        guard let free = lastFree[device], let probe = probeAllocations[device], !probe.isEmpty else { return false }
        let freed = probeFreed[device] ?? 0
        return freed * 2 >= probe.count && free >= (lastMap[device] ?? 0)
    }
}
