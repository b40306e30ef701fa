import GearmanQueue
import Testing

@Suite struct InMemoryQueueStoreTests {
    @Test func loadsJobsInTheOrderFirstAdded() async throws {
        let store = InMemoryQueueStore()
        try await store.commit(QueueBatch(added: [sampleJob(1), sampleJob(2)]))
        try await store.commit(QueueBatch(added: [sampleJob(3)]))
        #expect(try await store.loadAll() == [sampleJob(1), sampleJob(2), sampleJob(3)])
    }

    @Test func anUpsertReplacesTheJobButKeepsItsPlace() async throws {
        let store = InMemoryQueueStore()
        try await store.commit(QueueBatch(added: [sampleJob(1), sampleJob(2), sampleJob(3)]))
        try await store.commit(QueueBatch(added: [sampleJob(1, retries: 2)]))
        #expect(try await store.loadAll() == [sampleJob(1, retries: 2), sampleJob(2), sampleJob(3)])
        #expect(store.count == 3)
    }

    @Test func removesHandlesAfterAddingInOneBatch() async throws {
        let store = InMemoryQueueStore()
        try await store.commit(QueueBatch(added: [sampleJob(1), sampleJob(2)]))
        let handles = [sampleJob(3).handle, sampleJob(1).handle, buffer("H:none")]
        try await store.commit(QueueBatch(added: [sampleJob(3)], removedHandles: handles))
        #expect(try await store.loadAll() == [sampleJob(2)])
    }

    @Test func jobsWithAnEmptyUniqueAreDistinct() async throws {
        let store = InMemoryQueueStore()
        try await store.commit(QueueBatch(added: [sampleJob(1, unique: ""), sampleJob(2, unique: "")]))
        #expect(try await store.loadAll().count == 2)
    }

    @Test func keepsItsJobsAcrossClose() async throws {
        let store = InMemoryQueueStore()
        try await store.commit(QueueBatch(added: [sampleJob(1)]))
        await store.close()
        #expect(try await store.loadAll() == [sampleJob(1)])
    }
}
