/// The live jobs, by `JobID`, in a slab: an array of slots reused through a free list.
///
/// A `Dictionary<JobID, Job>` of a few hundred thousand jobs keeps its load between 3/8 and 3/4,
/// so most of its (large) buckets are empty; the slab grows like an array and reuses freed slots,
/// so a queued job costs about one slot. A `JobID` holds its slot and the slot's generation: a
/// stale ID (an entry left in a queue or a heap after its job ended) finds a newer job in its
/// slot and is told apart by the generation, so lookups of ended jobs answer nil as before.
struct JobTable {
    private var slots: [Job?] = []
    private var generations: [UInt32] = []
    private var free: [UInt32] = []
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// An ID for a new job; the job must be stored under it before the next call.
    mutating func reserveID() -> JobID {
        let slot: UInt32
        if let reused = free.popLast() {
            slot = reused
        } else {
            precondition(slots.count < Int(UInt32.max), "too many live jobs")
            slot = UInt32(slots.count)
            slots.append(nil)
            generations.append(0)
        }
        return JobID(slot: slot, generation: generations[Int(slot)])
    }

    subscript(id: JobID) -> Job? {
        get {
            let slot = Int(id.slot)
            guard slot < slots.count, generations[slot] == id.generation else { return nil }
            return slots[slot]
        }
        _modify {
            let slot = Int(id.slot)
            precondition(slot < slots.count && generations[slot] == id.generation, "unknown job ID")
            let wasPresent = slots[slot] != nil
            yield &slots[slot]
            let isPresent = slots[slot] != nil
            if wasPresent != isPresent { slotChanged(slot, nowPresent: isPresent) }
        }
        set {
            let slot = Int(id.slot)
            precondition(slot < slots.count && generations[slot] == id.generation, "unknown job ID")
            let wasPresent = slots[slot] != nil
            slots[slot] = newValue
            if wasPresent != (newValue != nil) { slotChanged(slot, nowPresent: newValue != nil) }
        }
    }

    @discardableResult
    mutating func removeValue(forKey id: JobID) -> Job? {
        guard let job = self[id] else { return nil }
        self[id] = nil
        return job
    }

    /// Every live job, in no particular order.
    var values: some Sequence<Job> { slots.lazy.compactMap { $0 } }

    /// A job arrived in, or left, `slot`. A freed slot gets a new generation, so IDs of the job
    /// that left it no longer match.
    private mutating func slotChanged(_ slot: Int, nowPresent: Bool) {
        if nowPresent {
            count += 1
        } else {
            count -= 1
            generations[slot] &+= 1
            free.append(UInt32(slot))
        }
    }
}
