/// Whether the trace shows the driver releasing its device (unbind, remove):
/// it freed coherent memory after its last streaming map.
enum Teardown {
    static func seen(_ p: DeviceProfile?, lastFree: UInt64?, lastMap: UInt64?) -> Bool {
        guard let p, p.frees > 0, let lastFree else { return false }
        return lastFree >= (lastMap ?? 0)
    }
}

/// Per-device times of the last map and the last free, for the leak rules.
struct DeviceActivity {
    var lastMap: [String: UInt64] = [:]
    var lastFree: [String: UInt64] = [:]

    mutating func note(_ fact: ModelFact) {
        switch fact {
        case .mapped(let m): lastMap[m.device] = m.mappedAt
        case .freed(let a, let e, _): lastFree[a.device] = e.timestamp
        default: break
        }
    }

    func tornDown(_ device: String, _ context: RuleContext) -> Bool {
        Teardown.seen(context.model.profile(of: device), lastFree: lastFree[device], lastMap: lastMap[device])
    }
}
