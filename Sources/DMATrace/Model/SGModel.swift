/// Scatter-gather lists, entry by entry: real DMA lengths, the list against itself, and
/// dma_unmap_sg against the list that was mapped (kernel/dma/debug.c debug_dma_map_sg and
/// debug_dma_unmap_sg check every entry).
extension DMAModel {
    static let pageSize: UInt64 = 4096

    func mapSGFailed(_ e: SGMapErrorEvent, _ event: DMAEvent, _ dev: DeviceState) {
        dev.profile.failedMaps += 1
        if let first = e.physAddrs.first {
            remember(dev, Tombstone(reason: .mapFailed, event: event, original: nil), key: first ^ Self.sgKeyTag)
        }
        sink(.mapFailed(event))
    }

    func mapSG(_ m: SGMapEvent, _ event: DMAEvent, _ dev: DeviceState) {
        if m.mappedEntries == 0 || m.dmaAddrs.isEmpty {
            dev.profile.failedMaps += 1
            if let first = m.physAddrs.first {
                remember(dev, Tombstone(reason: .mapFailed, event: event, original: nil), key: first ^ Self.sgKeyTag)
            }
            sink(.mapFailed(event))
            return
        }
        if m.dmaAddrs.count != m.lengths.count {
            sink(.anomaly(event, "dma_map_sg arrays disagree: \(m.dmaAddrs.count) dma addresses, \(m.lengths.count) lengths", applied: false))
            return
        }
        if !m.truncated && (m.physAddrs.count != m.inputEntries || m.dmaAddrs.count != m.mappedEntries) {
            sink(.anomaly(event, "dma_map_sg counts disagree with arrays: nents=\(m.inputEntries) phys=\(m.physAddrs.count), ents=\(m.mappedEntries) dma=\(m.dmaAddrs.count)", applied: true))
        }
        var segments: [StreamingMapping.Segment] = []
        let pairPhys = m.physAddrs.count == m.dmaAddrs.count
        for (i, (dma, len)) in zip(m.dmaAddrs, m.lengths).enumerated() {
            guard len > 0, !dma.addingReportingOverflow(len - 1).overflow else {
                sink(.anomaly(event, "dma_map_sg segment \(i) has length 0 or wraps past 2^64", applied: false))
                return
            }
            segments.append(.init(dmaAddr: dma, physAddr: pairPhys ? m.physAddrs[i] : 0, length: len))
        }
        let physRanges = pairPhys ? segments : mergedRanges(segments, entries: m.physAddrs, serving: event)
        var bounced = false
        for p in m.physAddrs where takeBounce(dev, phys: p) { bounced = true }
        let mapping = StreamingMapping(id: newID(), deviceState: dev, function: .scatterGather,
                                       direction: m.direction, attrs: m.attrs, segments: SegmentList(segments), physRanges: SegmentList(physRanges),
                                       entryPhys: m.physAddrs, inputEntries: m.inputEntries, truncated: m.truncated,
                                       mapEvent: event, bounced: bounced)
        dev.profile.sgMaps += 1
        classifyPath(dev, segments: pairPhys ? SegmentList(segments) : [], bounced: bounced, mmio: false,
                     translatedHint: !pairPhys || segments.contains { $0.dmaAddr != $0.physAddr }, serving: event)
        insert(mapping, dev)
    }

    /// The physical bytes behind merged segments (an IOMMU joined entries into fewer IOVA ranges).
    /// The iommu:map events that served the segment's IOVAs give them exactly; without them
    /// `Self.entryRanges` infers each entry's length from how iommu-dma merges.
    func mergedRanges(_ segments: [StreamingMapping.Segment], entries: [UInt64], serving event: DMAEvent) -> [StreamingMapping.Segment] {
        var out: [StreamingMapping.Segment] = []
        for s in segments {
            let end = IntervalIndex<StreamingMapping>.end(s.dmaAddr, s.length)
            var iova = s.dmaAddr & ~(Self.pageSize - 1)
            var covered = true
            var pieces: [StreamingMapping.Segment] = []
            while iova < end {
                guard let e = iommuEntry(for: iova, serving: event), e.size > 0 else { covered = false; break }
                let lo = max(iova, s.dmaAddr)
                let hi = min(end, iova &+ e.size)
                pieces.append(.init(dmaAddr: lo, physAddr: e.phys &+ (lo - iova), length: hi - lo))
                iova &+= e.size
            }
            guard covered else { return Self.entryRanges(segments: segments.map(\.length), entries: entries) }
            out += pieces
        }
        return out
    }

    /// Each input entry's physical range when entries were merged into `segments` (lengths) and
    /// the trace shows nothing better. iommu-dma merges an entry into the previous one only at an
    /// IOVA granule boundary (__finalise_sg), so every entry but a segment's last runs to the end
    /// of its page, and the last takes what remains of the segment: it need not reach the end of
    /// its page. No entry is taken past its own page: an entry of several pages is then covered
    /// only in part, which can hide an overlap but never invents one. Entries the capped arrays
    /// did not keep are taken to their page's end.
    static func entryRanges(segments: [UInt64], entries: [UInt64]) -> [StreamingMapping.Segment] {
        var out: [StreamingMapping.Segment] = []
        var i = 0
        for segLength in segments {
            var remaining = segLength
            while i < entries.count && remaining > 0 {
                let p = entries[i]
                let rest = pageSize - (p & (pageSize - 1))
                let length = min(remaining, rest)
                out.append(.init(dmaAddr: 0, physAddr: p, length: length))
                remaining -= length
                i += 1
            }
        }
        while i < entries.count {
            let p = entries[i]
            out.append(.init(dmaAddr: 0, physAddr: p, length: pageSize - (p & (pageSize - 1))))
            i += 1
        }
        return out
    }

    func unmapSG(_ u: SGUnmapEvent, _ event: DMAEvent, _ dev: DeviceState) {
        dev.profile.unmaps += 1
        guard let first = u.physAddrs.first else {
            sink(.anomaly(event, "dma_unmap_sg with no entries", applied: false))
            return
        }
        /// The first entry where the unmapped list differs from the mapped one (only entries the trace kept).
        func firstDifference(_ m: StreamingMapping) -> Int? {
            zip(m.entryPhys, u.physAddrs).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        }
        let n = u.physAddrs.count
        let sgCandidates = dev.sgByFirstPhys[first] ?? []
        // One page can start several live lists (mkfs maps the zero page dozens of times):
        // the list with the same entry count and pages is the one being released.
        let exact = sgCandidates.first { firstDifference($0) == nil && $0.inputEntries == n }
        if let m = exact {
            release(m, dev, event: event, size: nil, direction: u.direction, function: .scatterGather, entries: n)
            return
        }
        let partial = sgCandidates.first { firstDifference($0) == nil } ?? sgCandidates.first
        if let m = partial, let gap = gap(before: event.timestamp) {
            // Entries or count disagree and events were lost before this unmap: its real partner
            // may be the map that was lost (mkfs maps the zero page in many lists at once).
            // Releasing the near match would blame its own later unmap.
            sink(.unmapWithoutMapping(event, .partnerMayBeLost(gap: gap, near: m)))
            return
        }
        if let m = partial {
            release(m, dev, event: event, size: nil, direction: u.direction, function: .scatterGather, entries: n)
            if let i = firstDifference(m) {
                sink(.unmapSGEntryMismatch(m, unmap: event, index: i, mapped: m.entryPhys[i], unmapped: u.physAddrs[i]))
            }
            return
        }
        if let m = physIndex.containing(first).lazy.map(\.value)
            .first(where: { $0.device == dev.profile.name && !$0.isScatterGather && !$0.isAllocation && $0.physAddr == first }) {
            release(m, dev, event: event, size: nil, direction: u.direction, function: .scatterGather, entries: n)
            return
        }
        if let m = takeSuperseded(dev, key: first ^ Self.sgKeyTag, where: { firstDifference($0) == nil }) {
            confirmLive(m)
            release(m, dev, event: event, size: nil, direction: u.direction, function: .scatterGather,
                    entries: n, wasLive: false)
            return
        }
        sink(.unmapWithoutMapping(event, unmatched(dev, key: first ^ Self.sgKeyTag, address: nil)))
    }
}
