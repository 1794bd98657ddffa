import Foundation

/// Retrieval quality metrics with the definitions BEIR reports (through trec_eval): graded relevance, linear
/// gains, judged documents with relevance ≤ 0 counting as not relevant.
public enum RetrievalMetrics {
    /// Relevance judgements: query id → document id → grade.
    public typealias Judgements = [String: [String: Int]]

    /// Normalised discounted cumulative gain at `cutoff` for one query.
    ///
    /// `DCG = Σ_{i=1…cutoff} gain_i / log2(i + 1)` with the judged grade as the gain (trec_eval's `ndcg_cut`),
    /// divided by the DCG of the ideal ordering of all judged relevant documents.
    /// - Parameters:
    ///   - ranking: document ids, best first.
    ///   - relevant: the query's judgements (grade per document id).
    ///   - cutoff: the rank cut-off (10 for nDCG@10).
    /// - Returns: a value in 0…1; 0 when the query has no relevant document.
    public static func ndcg(ranking: [String], relevant: [String: Int], cutoff: Int) -> Double {
        var dcg = 0.0
        for (position, document) in ranking.prefix(cutoff).enumerated() {
            let gain = Double(max(0, relevant[document] ?? 0))
            dcg += gain / log2(Double(position) + 2)
        }
        let ideal = relevant.values.filter { $0 > 0 }.sorted(by: >).prefix(cutoff)
        var idcg = 0.0
        for (position, grade) in ideal.enumerated() { idcg += Double(grade) / log2(Double(position) + 2) }
        return idcg > 0 ? dcg / idcg : 0
    }

    /// The share of the query's relevant documents found in the first `cutoff` results.
    /// - Parameters:
    ///   - ranking: document ids, best first.
    ///   - relevant: the query's judgements.
    ///   - cutoff: the rank cut-off (100 for Recall@100).
    /// - Returns: a value in 0…1; 0 when the query has no relevant document.
    public static func recall(ranking: [String], relevant: [String: Int], cutoff: Int) -> Double {
        let relevantCount = relevant.values.filter { $0 > 0 }.count
        guard relevantCount > 0 else { return 0 }
        let found = ranking.prefix(cutoff).filter { (relevant[$0] ?? 0) > 0 }.count
        return Double(found) / Double(relevantCount)
    }

    /// The reciprocal rank of the first relevant document within the first `cutoff` results, else 0.
    /// - Parameters:
    ///   - ranking: document ids, best first.
    ///   - relevant: the query's judgements.
    ///   - cutoff: the rank cut-off (10 for MRR@10).
    /// - Returns: 1/rank, or 0.
    public static func reciprocalRank(ranking: [String], relevant: [String: Int], cutoff: Int) -> Double {
        for (position, document) in ranking.prefix(cutoff).enumerated() where (relevant[document] ?? 0) > 0 {
            return 1 / Double(position + 1)
        }
        return 0
    }
}
