/// dma_alloc_* memory. Coherent allocations (dma_alloc_coherent / dma_alloc_attrs) are tracked
/// as allocations. dma_alloc_pages / dma_alloc_noncoherent / dma_alloc_noncontiguous memory is
/// owned like streaming memory (dma-api.rst Part II: "Before giving the memory to the device,
/// dma_sync_single_for_device() needs to be called ... just like for streaming DMA mappings";
/// kernel/dma/debug.c enters dma_alloc_pages as a page map and dma_alloc_noncontiguous as an sg
/// map): it lives among the streaming mappings, so its syncs are checked for range, direction
/// and use after free, and overlaps with streaming maps are double mappings.
extension DMAModel {
    func alloc(_ a: AllocEvent, _ event: DMAEvent, _ dev: DeviceState) {
        if a.failed || a.dmaAddr == Self.mappingError || (a.dmaAddr == 0 && a.cpuAddr.value == 0) { return }
        guard a.size > 0, !a.dmaAddr.addingReportingOverflow(a.size - 1).overflow else {
            sink(.anomaly(event, "allocation of size 0 or wrapping past 2^64", applied: false))
            return
        }
        if case .value(let v) = a.cpuAddr, !a.attrs.contains(.noKernelMapping) { learnArchitecture(from: v) }
        dev.profile.allocs += 1
        if a.api != .coherent {
            allocOwned(a, event, dev)
            return
        }
        if dev.profile.firstMapTimestamp == nil { dev.profile.probeAllocations += 1 }
        var assumed = false
        var phys = physicalRanges(of: a.dmaAddr, size: a.size, event, dev)
        if phys.isEmpty, dev.profile.translatedSegments == 0 && !sawIOMMUMaps {
            // dma-direct as far as the trace shows: the bus address is the physical address.
            // Withdrawn if the device later turns out to be translated.
            phys = [.init(dmaAddr: a.dmaAddr, physAddr: a.dmaAddr, length: a.size)]
            assumed = true
        }
        let allocation = CoherentAllocation(id: newID(), device: dev.profile.name, event: a, allocEvent: event,
                                            physRanges: phys)
        allocation.physAssumed = assumed
        allocation.beforeFirstMap = dev.profile.firstMapTimestamp == nil
        if let p = phys.first?.physAddr, case .value(let v) = a.cpuAddr, !a.attrs.contains(.noKernelMapping),
           linearOffsetVotes.count < 512 || linearOffsetVotes[v &- p] != nil {
            linearOffsetVotes[v &- p, default: 0] += 1
        }
        for r in phys { coherentPhysIndex.insert(start: r.physAddr, length: r.length, allocation) }
        dev.allocations[a.dmaAddr, default: []].append(allocation)
        dev.liveAllocations[allocation.id] = allocation
        dev.profile.liveAllocations = dev.liveAllocations.count + dev.profile.liveOwnedAllocations
        dev.profile.liveCoherentBytes &+= allocation.size
        dev.profile.peakLiveAllocations = max(dev.profile.peakLiveAllocations, dev.profile.liveAllocations)
        dev.freedAllocations[a.dmaAddr] = nil
        sink(.allocated(allocation))
    }

    /// The physical memory behind a bus address range when the trace shows it: the iommu:map
    /// events that served it (page by page, in any physical order), or a known bus offset.
    func physicalRanges(of dma: UInt64, size: UInt64, _ event: DMAEvent, _ dev: DeviceState) -> [StreamingMapping.Segment] {
        var phys: [StreamingMapping.Segment] = []
        if iommuEntry(for: dma, serving: event) != nil {
            var iova = dma
            let end = IntervalIndex<StreamingMapping>.end(dma, size)
            while iova < end, let e = iommuEntry(for: iova, serving: event), e.size > 0 {
                phys.append(.init(dmaAddr: iova, physAddr: e.phys, length: min(e.size, end - iova)))
                iova &+= e.size
            }
        } else if let offset = dev.profile.busOffset {
            phys = [.init(dmaAddr: dma, physAddr: dma &- offset, length: size)]
        }
        return phys
    }

    /// dma_alloc_pages / dma_alloc_noncontiguous: a streaming-like mapping the driver owns.
    private func allocOwned(_ a: AllocEvent, _ event: DMAEvent, _ dev: DeviceState) {
        let length = a.api == .sgt ? (a.size + Self.pageSize - 1) & ~(Self.pageSize - 1) : a.size
        let seg = StreamingMapping.Segment(dmaAddr: a.dmaAddr, physAddr: a.dmaAddr, length: length)
        var phys: [StreamingMapping.Segment]
        var assumed = false
        if a.api == .sgt, !a.physAddrs.isEmpty {
            // The sg table's pages: one entry is the whole buffer (dma-direct's alloc_single_sgt);
            // behind an IOMMU each entry is at least a page.
            phys = a.physAddrs.count == 1
                ? [.init(dmaAddr: a.dmaAddr, physAddr: a.physAddrs[0], length: length)]
                : a.physAddrs.map { .init(dmaAddr: 0, physAddr: $0, length: Self.pageSize) }
        } else {
            phys = physicalRanges(of: a.dmaAddr, size: length, event, dev)
            if phys.isEmpty, dev.profile.translatedSegments == 0 && !sawIOMMUMaps {
                // dma-direct as far as the trace shows; withdrawn if the device turns out translated.
                phys = [seg]
                assumed = true
            }
        }
        let mapping = StreamingMapping(id: newID(), deviceState: dev, function: .allocation(a.api),
                                       direction: a.direction, attrs: a.attrs, segments: [seg], physRanges: SegmentList(phys),
                                       entryPhys: a.physAddrs, inputEntries: max(a.physAddrs.count, 1), truncated: false,
                                       mapEvent: event, bounced: false)
        if assumed {
            // Only live ones can still be withdrawn: drop the released when the list grows.
            if dev.assumedOwned.count >= 4096 {
                dev.assumedOwned.removeAll { m in !dev.byDMA.containing(m.dmaAddr).contains { $0.value === m } }
            }
            dev.assumedOwned.append(mapping)
        }
        insert(mapping, dev)
    }

    func free(_ f: FreeEvent, _ event: DMAEvent, _ dev: DeviceState) {
        // dma_free_attrs() traces before it returns on a NULL cpu_addr (6.12+ traces error
        // paths too): freeing NULL is a legal no-op, as drivers do for optional buffers.
        if f.cpuAddr.value == 0 && (f.size == 0 || f.dmaAddr == 0) { return }
        dev.profile.frees += 1
        if f.api != .coherent {
            freeOwned(f, event, dev)
            return
        }
        let candidates = dev.allocations[f.dmaAddr] ?? []
        let chosen = candidates.first { $0.api == f.api && $0.size == f.size } ?? candidates.first { $0.api == f.api }
            ?? candidates.first
        guard let a = chosen else {
            if let owned = ownedMapping(at: f.dmaAddr, dev) {
                // dma_free_coherent of dma_alloc_pages memory: released, with the wrong function.
                release(owned, dev, event: event, size: f.size, direction: f.direction, function: .allocation(.coherent), entries: nil)
            } else if let previous = dev.freedAllocations[f.dmaAddr] {
                sink(.freeWithoutAllocation(event, .alreadyReleased(release: previous, original: nil)))
            } else {
                sink(.freeWithoutAllocation(event, .neverSeen(mayPredateTrace: !historyComplete(dev.profile.name), near: nil)))
            }
            return
        }
        dev.allocations[f.dmaAddr]?.removeAll { $0 === a }
        if dev.allocations[f.dmaAddr]?.isEmpty == true { dev.allocations[f.dmaAddr] = nil }
        dev.liveAllocations[a.id] = nil
        dev.profile.liveAllocations = dev.liveAllocations.count + dev.profile.liveOwnedAllocations
        dev.profile.liveCoherentBytes &-= a.size
        dev.profile.lastFreeTimestamp = event.timestamp
        if a.beforeFirstMap {
            dev.profile.probeAllocationsFreed += 1
            dev.profile.probeAllocationsFreedAfterLastMap += 1
        }
        for r in a.physRanges { coherentPhysIndex.remove(start: r.physAddr, length: r.length, a) }
        a.history.append(event)
        if dev.freedAllocations.updateValue(event, forKey: f.dmaAddr) == nil { dev.freedOrder.append(f.dmaAddr) }
        if dev.freedOrder.count > TombstoneMemory.limit { dev.freedAllocations[dev.freedOrder.removeFirst()] = nil }
        sink(.freed(a, free: event, f))
    }

    private func ownedMapping(at dma: UInt64, _ dev: DeviceState) -> StreamingMapping? {
        dev.byDMA.containing(dma).lazy.map(\.value).first { $0.isAllocation && $0.dmaAddr == dma }
    }

    /// dma_free_pages / dma_free_noncoherent / dma_free_noncontiguous: the owned mapping ends.
    private func freeOwned(_ f: FreeEvent, _ event: DMAEvent, _ dev: DeviceState) {
        if let m = ownedMapping(at: f.dmaAddr, dev) ?? dev.byDMA.containing(f.dmaAddr).lazy.map(\.value).first(where: { $0.dmaAddr == f.dmaAddr }) {
            release(m, dev, event: event, size: f.size, direction: f.direction, function: .allocation(f.api), entries: nil)
            return
        }
        if dev.allocations[f.dmaAddr]?.isEmpty == false {
            // dma_free_pages of coherent memory: freed, with the wrong function.
            let candidates = dev.allocations[f.dmaAddr]!
            let a = candidates[0]
            dev.allocations[f.dmaAddr]?.removeAll { $0 === a }
            if dev.allocations[f.dmaAddr]?.isEmpty == true { dev.allocations[f.dmaAddr] = nil }
            dev.liveAllocations[a.id] = nil
            dev.profile.liveAllocations = dev.liveAllocations.count + dev.profile.liveOwnedAllocations
            dev.profile.liveCoherentBytes &-= a.size
            for r in a.physRanges { coherentPhysIndex.remove(start: r.physAddr, length: r.length, a) }
            a.history.append(event)
            sink(.freed(a, free: event, f))
            return
        }
        switch unmatched(dev, key: f.dmaAddr, address: f.dmaAddr) {
        case .alreadyReleased(let release, let original):
            sink(.freeWithoutAllocation(event, .alreadyReleased(release: release, original: original)))
        default:
            sink(.freeWithoutAllocation(event, .neverSeen(mayPredateTrace: !historyComplete(dev.profile.name), near: nil)))
        }
    }
}
