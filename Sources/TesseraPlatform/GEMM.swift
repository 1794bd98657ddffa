import CBLAS

/// Single-precision matrix products through BLAS `cblas_sgemm` (OpenBLAS on Linux, Accelerate on Apple).
///
/// Matrices are row-major. Why BLAS: `sgemm` runs 256×1536×384 in about 1.5 ms on a 2-core development machine,
/// against 67 ms for a plain Swift triple loop.
public enum GEMM {
    /// `c[rows, columns] = alpha · a[rows, depth] · b[columns, depth]ᵀ + beta · c`.
    /// - Parameters:
    ///   - a: `[rows, depth]`.
    ///   - b: `[columns, depth]`.
    ///   - rows: Rows of `a` and `c`.
    ///   - columns: Rows of `b`, columns of `c`.
    ///   - depth: Columns of `a` and `b`.
    ///   - alpha: The product's factor.
    ///   - beta: The factor of what `c` holds before.
    ///   - c: `[rows, columns]`, overwritten.
    /// - Note: Traps when a matrix holds fewer values than its shape says.
    public static func multiplyTransposed(
        _ a: [Float],
        _ b: [Float],
        rows: Int,
        columns: Int,
        depth: Int,
        alpha: Float = 1,
        beta: Float = 0,
        into c: inout [Float]
    ) {
        precondition(a.count >= rows * depth && b.count >= columns * depth && c.count >= rows * columns)
        guard rows > 0, columns > 0 else { return }
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    multiply(
                        rows: rows,
                        columns: columns,
                        depth: depth,
                        alpha: alpha,
                        a: a.baseAddress!,
                        aStride: depth,
                        b: b.baseAddress!,
                        bStride: depth,
                        bTransposed: true,
                        beta: beta,
                        c: c.baseAddress!,
                        cStride: columns
                    )
                }
            }
        }
    }

    /// `c[columns, columns] = scale · a[rows, columns]ᵀ · a[rows, columns]` (a Gram matrix: a covariance or a
    /// second moment).
    /// - Parameters:
    ///   - a: `[rows, columns]`.
    ///   - rows: Rows of `a`.
    ///   - columns: Columns of `a`.
    ///   - scale: The product's factor.
    ///   - c: `[columns, columns]`, overwritten.
    /// - Note: Traps when a matrix holds fewer values than its shape says.
    public static func gram(_ a: [Float], rows: Int, columns: Int, scale: Float = 1, into c: inout [Float]) {
        precondition(a.count >= rows * columns && c.count >= columns * columns)
        guard columns > 0 else { return }
        a.withUnsafeBufferPointer { a in
            c.withUnsafeMutableBufferPointer { c in
                multiply(
                    rows: columns,
                    columns: columns,
                    depth: rows,
                    alpha: scale,
                    a: a.baseAddress!,
                    aStride: columns,
                    aTransposed: true,
                    b: a.baseAddress!,
                    bStride: columns,
                    bTransposed: false,
                    beta: 0,
                    c: c.baseAddress!,
                    cStride: columns
                )
            }
        }
    }

    /// `c[rows, columns] = alpha · op(a) · op(b) + beta · c`, where `op(a)` is `a[rows, depth]`, or
    /// `a[depth, rows]ᵀ` when `aTransposed`, and `op(b)` is `b[depth, columns]`, or `b[columns, depth]ᵀ` when
    /// `bTransposed`; each stored row starts `stride` values after the previous one.
    /// - Note: Traps for a negative size, a stride shorter than its row, or a size over `Int32.max`.
    /// - Warning: The pointers must hold the whole matrices; they are used only during the call.
    package static func multiply(
        rows: Int,
        columns: Int,
        depth: Int,
        alpha: Float,
        a: UnsafePointer<Float>,
        aStride: Int,
        aTransposed: Bool = false,
        b: UnsafePointer<Float>,
        bStride: Int,
        bTransposed: Bool,
        beta: Float,
        c: UnsafeMutablePointer<Float>,
        cStride: Int
    ) {
        precondition(rows >= 0 && columns >= 0 && depth >= 0, "negative matrix size")
        precondition(aStride >= (aTransposed ? rows : depth) && bStride >= (bTransposed ? depth : columns))
        precondition(cStride >= columns)
        cblas_sgemm(
            CblasRowMajor,
            aTransposed ? CblasTrans : CblasNoTrans,
            bTransposed ? CblasTrans : CblasNoTrans,
            Int32(rows),
            Int32(columns),
            Int32(depth),
            alpha,
            a,
            Int32(aStride),
            b,
            Int32(bStride),
            beta,
            c,
            Int32(cStride)
        )
    }
}
