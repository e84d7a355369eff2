//! Kernel matrices too large for one dense f64 allocation, kept in row blocks — in memory or in
//! files on disk — in f64 or f32, and the products the Krylov solvers need from them.
//!
//! A **symmetric** `n × n` kernel keeps its lower triangle by row blocks: block `b` holds rows
//! `[b·R, min((b+1)·R, n))` and columns `[0, end_b)`, `end_b` its last row + 1, row-major (the
//! diagonal tile whole, both of its triangles). A **rectangular** `m × n` kernel (held-out ×
//! training points) keeps row blocks of all `n` columns. Every number is produced and consumed
//! in f64; `f32` storage rounds each entry once (relative error ≤ 2⁻²⁴ per entry) and halves
//! memory and the bandwidth of every product.
//!
//! Products `A·V` for a few columns `V` read each stored entry once: a row block is walked in
//! tiles that stay in cache, and each tile serves both its own rows (`A_b·V`) and, below the
//! diagonal tile, the transposed contribution to earlier rows (`A_bᵀ·V_b`). Blocks are split into
//! a fixed number of groups ([`GROUPS`], independent of the thread count) that run in parallel
//! into their own accumulators, summed in group order: the same bits on any number of threads.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[cfg(target_arch = "x86_64")]
mod simd;

/// Precision of the stored entries (`kernel.storage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoragePrecision {
    /// 8 bytes an entry, exact.
    #[default]
    F64,
    /// 4 bytes an entry, each rounded once to f32.
    F32,
}

impl StoragePrecision {
    /// Bytes per stored entry.
    pub fn bytes(self) -> u64 {
        match self {
            StoragePrecision::F64 => 8,
            StoragePrecision::F32 => 4,
        }
    }

    /// Config name.
    pub fn name(self) -> &'static str {
        match self {
            StoragePrecision::F64 => "f64",
            StoragePrecision::F32 => "f32",
        }
    }
}

/// Which entries a store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StoreShape {
    /// The lower triangle of a symmetric `n × n` matrix.
    Symmetric {
        /// Rows and columns.
        n: usize,
    },
    /// A dense `nrows × ncols` matrix.
    Rect {
        /// Rows.
        nrows: usize,
        /// Columns.
        ncols: usize,
    },
}

/// Fixed number of accumulator groups of a symmetric product (see the module doc).
pub const GROUPS: usize = 8;

/// Rows of a tile of the product loop.
const TILE_ROWS: usize = 32;
/// Columns of a tile of the product loop (32 × 2048 f64 = 512 KiB: in L2 for both products).
const TILE_COLS: usize = 2048;

/// One block's entries.
#[derive(Debug, Clone)]
enum BlockData {
    F64(Vec<f64>),
    F32(Vec<f32>),
}

/// Where the blocks live.
#[derive(Debug)]
enum Backing {
    /// In memory (`None`: not computed yet).
    Memory(Vec<Option<BlockData>>),
    /// One file a block in a directory.
    Disk(PathBuf),
}

/// The description of a store written next to its blocks on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreManifest {
    /// Which entries.
    pub shape: StoreShape,
    /// Rows per block.
    pub block_rows: usize,
    /// Entry precision.
    pub precision: StoragePrecision,
    /// What the kernel is of (the caller's identity of config and data): a store is reused only
    /// for the same identity.
    pub identity: String,
}

/// A kernel matrix in row blocks.
#[derive(Debug)]
pub struct KernelStore {
    manifest: StoreManifest,
    backing: Backing,
}

/// Block `b` of a store in memory, or an error when it was never computed.
fn computed(blocks: &[Option<BlockData>], b: usize) -> Result<&BlockData> {
    blocks[b]
        .as_ref()
        .ok_or_else(|| Error::Numerics(format!("kernel block {b} was never computed")))
}

fn store_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: message.into(),
    }
}

impl KernelStore {
    /// An empty store in memory.
    pub fn in_memory(
        shape: StoreShape,
        block_rows: usize,
        precision: StoragePrecision,
    ) -> KernelStore {
        let manifest = StoreManifest {
            shape,
            block_rows: block_rows.max(1),
            precision,
            identity: String::new(),
        };
        let n_blocks = manifest.n_blocks();
        KernelStore {
            manifest,
            backing: Backing::Memory((0..n_blocks).map(|_| None).collect()),
        }
    }

    /// A store in the directory `dir`: created (with its manifest) when absent or empty;
    /// reopened — keeping the blocks already computed — when it holds a store of the same
    /// manifest; an error when it holds a different one.
    pub fn on_disk(dir: &Path, manifest: StoreManifest) -> Result<KernelStore> {
        let manifest = StoreManifest {
            block_rows: manifest.block_rows.max(1),
            ..manifest
        };
        let path = dir.join(MANIFEST);
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let found: StoreManifest = serde_json::from_str(&text)
                .map_err(|e| store_error(&path, format!("not a kernel store manifest: {e}")))?;
            if found != manifest {
                return Err(store_error(
                    &path,
                    format!(
                        "holds a different kernel ({found:?}); this run needs {manifest:?}: remove the directory or choose another kernel.store_dir"
                    ),
                ));
            }
        } else {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
            write_atomic(&path, text.as_bytes())?;
        }
        Ok(KernelStore {
            manifest,
            backing: Backing::Disk(dir.to_path_buf()),
        })
    }

    /// Whether the blocks are files on disk.
    pub fn is_on_disk(&self) -> bool {
        matches!(self.backing, Backing::Disk(_))
    }

    /// A copy of a store in memory (every block read once; the same entries).
    pub fn load_into_memory(&self) -> Result<KernelStore> {
        let mut blocks = Vec::with_capacity(self.n_blocks());
        for b in 0..self.n_blocks() {
            let mut v = Vec::with_capacity(self.manifest.block_entries(b) as usize);
            self.for_row_chunks(b, TILE_ROWS * 8, |_, chunk| v.extend_from_slice(chunk))?;
            blocks.push(Some(match self.manifest.precision {
                StoragePrecision::F64 => BlockData::F64(v),
                StoragePrecision::F32 => BlockData::F32(v.into_iter().map(|x| x as f32).collect()),
            }));
        }
        Ok(KernelStore {
            manifest: self.manifest.clone(),
            backing: Backing::Memory(blocks),
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &StoreManifest {
        &self.manifest
    }

    /// Rows.
    pub fn nrows(&self) -> usize {
        self.manifest.nrows()
    }

    /// Columns.
    pub fn ncols(&self) -> usize {
        self.manifest.ncols()
    }

    /// Number of row blocks.
    pub fn n_blocks(&self) -> usize {
        self.manifest.n_blocks()
    }

    /// Rows `[r0, r1)` of block `b`.
    pub fn block_range(&self, b: usize) -> (usize, usize) {
        self.manifest.block_range(b)
    }

    /// Columns stored in block `b`.
    pub fn block_cols(&self, b: usize) -> usize {
        self.manifest.block_cols(b)
    }

    /// Whether block `b` has been computed.
    pub fn has_block(&self, b: usize) -> bool {
        match &self.backing {
            Backing::Memory(blocks) => blocks[b].is_some(),
            Backing::Disk(dir) => {
                let expect = self.manifest.block_bytes(b);
                std::fs::metadata(block_path(dir, b)).is_ok_and(|m| m.len() == expect)
            }
        }
    }

    /// The blocks not computed yet.
    pub fn missing_blocks(&self) -> Vec<usize> {
        (0..self.n_blocks())
            .filter(|&b| !self.has_block(b))
            .collect()
    }

    /// Stores block `b` from its row-major f64 values (`rows × block_cols(b)`), rounded to the
    /// store's precision; on disk written atomically.
    pub fn set_block(&mut self, b: usize, values: &[f64]) -> Result<()> {
        let (r0, r1) = self.block_range(b);
        assert_eq!(
            values.len(),
            (r1 - r0) * self.block_cols(b),
            "set_block: wrong length"
        );
        let data = match self.manifest.precision {
            StoragePrecision::F64 => BlockData::F64(values.to_vec()),
            StoragePrecision::F32 => BlockData::F32(values.iter().map(|&v| v as f32).collect()),
        };
        match &mut self.backing {
            Backing::Memory(blocks) => {
                blocks[b] = Some(data);
                Ok(())
            }
            Backing::Disk(dir) => {
                let bytes: Vec<u8> = match &data {
                    BlockData::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    BlockData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                };
                write_atomic(&block_path(dir, b), &bytes)
            }
        }
    }

    /// Calls `f(row0, chunk)` for consecutive row chunks of block `b` (at most `chunk_rows` rows,
    /// row-major f64, `block_cols(b)` columns), in order.
    pub fn for_row_chunks(
        &self,
        b: usize,
        chunk_rows: usize,
        mut f: impl FnMut(usize, &[f64]),
    ) -> Result<()> {
        let (r0, r1) = self.block_range(b);
        let cols = self.block_cols(b);
        let chunk_rows = chunk_rows.max(1);
        let mut buf: Vec<f64> = Vec::new();
        match &self.backing {
            Backing::Memory(blocks) => {
                let data = computed(blocks, b)?;
                let mut r = r0;
                while r < r1 {
                    let nr = chunk_rows.min(r1 - r);
                    let (a, z) = ((r - r0) * cols, (r - r0 + nr) * cols);
                    match data {
                        BlockData::F64(v) => f(r, &v[a..z]),
                        BlockData::F32(v) => {
                            buf.clear();
                            buf.extend(v[a..z].iter().map(|&x| x as f64));
                            f(r, &buf)
                        }
                    }
                    r += nr;
                }
            }
            Backing::Disk(dir) => {
                let path = block_path(dir, b);
                let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
                let eb = self.manifest.precision.bytes() as usize;
                let mut raw = Vec::new();
                let mut r = r0;
                while r < r1 {
                    let nr = chunk_rows.min(r1 - r);
                    raw.resize(nr * cols * eb, 0u8);
                    file.read_exact_at(&mut raw, ((r - r0) * cols * eb) as u64)
                        .map_err(|e| Error::io(&path, e))?;
                    buf.clear();
                    match self.manifest.precision {
                        StoragePrecision::F64 => buf.extend(raw.chunks_exact(8).map(|c| {
                            f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                        })),
                        StoragePrecision::F32 => buf.extend(
                            raw.chunks_exact(4)
                                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64),
                        ),
                    }
                    f(r, &buf);
                    r += nr;
                }
            }
        }
        Ok(())
    }

    /// `A·v` (`v`: `ncols × c`), every stored entry read once, the same bits on any number of
    /// threads.
    pub fn apply(&self, v: MatRef<'_, f64>) -> Result<Mat<f64>> {
        assert_eq!(v.nrows(), self.ncols(), "apply: wrong number of rows");
        let c = v.ncols();
        let groups = self.groups();
        #[cfg(target_arch = "x86_64")]
        if simd::available() {
            return self.apply_simd(v, &groups);
        }
        let parts: Vec<Result<Mat<f64>>> = groups
            .par_iter()
            .map(|blocks| {
                let mut acc = Mat::<f64>::zeros(self.nrows(), c);
                for &b in blocks {
                    self.apply_block(b, v, acc.as_mut())?;
                }
                Ok(acc)
            })
            .collect();
        let mut out = Mat::<f64>::zeros(self.nrows(), c);
        for p in parts {
            out += p?;
        }
        Ok(out)
    }

    /// [`Self::apply`] with the AVX-512 kernels of [`simd`] (a store in memory and the same store
    /// on disk give the same bits).
    #[cfg(target_arch = "x86_64")]
    fn apply_simd(&self, v: MatRef<'_, f64>, groups: &[Vec<usize>]) -> Result<Mat<f64>> {
        let (n, m, c) = (self.ncols(), self.nrows(), v.ncols());
        let mut v_cols = vec![0.0; n * c];
        for k in 0..c {
            for i in 0..n {
                v_cols[k * n + i] = v[(i, k)];
            }
        }
        let v_cols = simd::Columns {
            data: &v_cols,
            ld: n,
        };
        let parts: Vec<Result<Vec<f64>>> = groups
            .par_iter()
            .map(|blocks| {
                let mut acc = vec![0.0; m * c];
                for &b in blocks {
                    self.apply_block_simd(b, &v_cols, &mut acc, m)?;
                }
                Ok(acc)
            })
            .collect();
        let mut out = Mat::<f64>::zeros(m, c);
        for p in parts {
            let p = p?;
            for k in 0..c {
                for i in 0..m {
                    out[(i, k)] += p[k * m + i];
                }
            }
        }
        Ok(out)
    }

    /// Block `b`'s contribution to `A·v` into the column-major `acc` (leading dimension `ld`):
    /// chunks of [`TILE_ROWS`] rows in order, from memory or read from disk (f32 entries widened
    /// exactly to f64 on the way, so both give the same bits).
    #[cfg(target_arch = "x86_64")]
    fn apply_block_simd(
        &self,
        b: usize,
        v: &simd::Columns<'_>,
        acc: &mut [f64],
        ld: usize,
    ) -> Result<()> {
        let (r0, r1) = self.block_range(b);
        let cols = self.block_cols(b);
        match &self.backing {
            Backing::Memory(blocks) => {
                let data = computed(blocks, b)?;
                let mut row = r0;
                while row < r1 {
                    let nr = TILE_ROWS.min(r1 - row);
                    let at = (row - r0) * cols;
                    match data {
                        BlockData::F64(d) => {
                            self.chunk_simd(r0, row, nr, cols, &d[at..], v, acc, ld)
                        }
                        BlockData::F32(d) => {
                            self.chunk_simd(r0, row, nr, cols, &d[at..], v, acc, ld)
                        }
                    }
                    row += nr;
                }
                Ok(())
            }
            Backing::Disk(_) => self.for_row_chunks(b, TILE_ROWS, |row, chunk| {
                let nr = chunk.len() / cols.max(1);
                self.chunk_simd(r0, row, nr, cols, chunk, v, acc, ld);
            }),
        }
    }

    /// `nr` rows from `row` of a block starting at row `r0` (`data`: those rows, row-major with
    /// `cols` columns) in column tiles, each serving its rows' product and (left of the block's
    /// first row, in a symmetric store) its mirror image's.
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    fn chunk_simd<T: simd::Entry>(
        &self,
        r0: usize,
        row: usize,
        nr: usize,
        cols: usize,
        data: &[T],
        v: &simd::Columns<'_>,
        acc: &mut [f64],
        ld: usize,
    ) {
        let symmetric = matches!(self.manifest.shape, StoreShape::Symmetric { .. });
        let mut c0 = 0;
        while c0 < cols {
            let nc = TILE_COLS.min(cols - c0);
            let tile = simd::Tile {
                data,
                stride: cols,
                offset: c0,
                rows: nr,
                cols: nc,
            };
            simd::rows_product(tile, v, c0, acc, ld, row);
            if symmetric && c0 < r0 {
                let nt = nc.min(r0 - c0);
                simd::mirror_product(tile, nt, v, row, acc, ld, c0);
            }
            c0 += nc;
        }
    }

    /// Blocks split into at most [`GROUPS`] groups of about equal stored entries.
    fn groups(&self) -> Vec<Vec<usize>> {
        let nb = self.n_blocks();
        let total: u64 = (0..nb).map(|b| self.manifest.block_entries(b)).sum();
        let per = total.div_ceil(GROUPS as u64).max(1);
        let mut groups = vec![Vec::new()];
        let mut filled = 0u64;
        for b in 0..nb {
            if filled >= per && groups.len() < GROUPS {
                groups.push(Vec::new());
                filled = 0;
            }
            groups.last_mut().expect("non-empty").push(b);
            filled += self.manifest.block_entries(b);
        }
        groups
    }

    /// Adds block `b`'s contribution to `A·v` into `acc` on CPUs without AVX-512 (two general
    /// matrix products per tile: 0.74 ns per stored entry on the reference machine, f64 and f32
    /// alike).
    fn apply_block(&self, b: usize, v: MatRef<'_, f64>, mut acc: MatMut<'_, f64>) -> Result<()> {
        let (r0, _) = self.block_range(b);
        let cols = self.block_cols(b);
        let symmetric = matches!(self.manifest.shape, StoreShape::Symmetric { .. });
        self.for_row_chunks(b, TILE_ROWS, |row, chunk| {
            let nr = chunk.len() / cols;
            let a = MatRef::from_row_major_slice(chunk, nr, cols);
            let mut c0 = 0;
            while c0 < cols {
                let nc = TILE_COLS.min(cols - c0);
                let tile = a.submatrix(0, c0, nr, nc);
                faer::linalg::matmul::matmul(
                    acc.as_mut().submatrix_mut(row, 0, nr, v.ncols()),
                    Accum::Add,
                    tile,
                    v.submatrix(c0, 0, nc, v.ncols()),
                    1.0,
                    Par::Seq,
                );
                // Columns left of the diagonal tile stand for their mirror images too.
                if symmetric && c0 < r0 {
                    let nt = nc.min(r0 - c0);
                    faer::linalg::matmul::matmul(
                        acc.as_mut().submatrix_mut(c0, 0, nt, v.ncols()),
                        Accum::Add,
                        tile.submatrix(0, 0, nr, nt).transpose(),
                        v.submatrix(row, 0, nr, v.ncols()),
                        1.0,
                        Par::Seq,
                    );
                }
                c0 += nc;
            }
        })
    }

    /// The diagonal of a symmetric store.
    pub fn diagonal(&self) -> Result<Vec<f64>> {
        let n = self.nrows();
        let mut d = vec![0.0; n];
        for b in 0..self.n_blocks() {
            let cols = self.block_cols(b);
            self.for_row_chunks(b, TILE_ROWS, |row, chunk| {
                for (i, r) in chunk.chunks(cols).enumerate() {
                    d[row + i] = r[row + i];
                }
            })?;
        }
        Ok(d)
    }

    /// Columns `idx` of a symmetric store (`n × idx.len()`), in one pass over the blocks.
    pub fn columns(&self, idx: &[usize]) -> Result<Mat<f64>> {
        let n = self.nrows();
        let mut out = Mat::<f64>::zeros(n, idx.len());
        // Position of each wanted column, for the row pass (entries (j, i), i < j).
        let mut wanted: Vec<Option<usize>> = vec![None; n];
        for (p, &j) in idx.iter().enumerate() {
            wanted[j] = Some(p);
        }
        for b in 0..self.n_blocks() {
            let cols = self.block_cols(b);
            self.for_row_chunks(b, TILE_ROWS, |row, chunk| {
                for (di, r) in chunk.chunks(cols).enumerate() {
                    let i = row + di;
                    // Entries (i, j) with j ≤ i: column j of row i.
                    for (p, &j) in idx.iter().enumerate() {
                        if j <= i {
                            out[(i, p)] = r[j];
                        }
                    }
                    // Row i itself is wanted: its entries (i, j), j < i, are column i's rows j.
                    if let Some(p) = wanted[i] {
                        for (j, &val) in r.iter().enumerate().take(i) {
                            out[(j, p)] = val;
                        }
                    }
                }
            })?;
        }
        Ok(out)
    }

    /// The leading `p × p` block of a symmetric store, dense.
    pub fn leading(&self, p: usize) -> Result<Mat<f64>> {
        let p = p.min(self.nrows());
        let mut out = Mat::<f64>::zeros(p, p);
        for b in 0..self.n_blocks() {
            let (r0, _) = self.block_range(b);
            if r0 >= p {
                break;
            }
            let cols = self.block_cols(b);
            self.for_row_chunks(b, TILE_ROWS, |row, chunk| {
                for (di, r) in chunk.chunks(cols).enumerate() {
                    let i = row + di;
                    if i < p {
                        for (j, &val) in r.iter().enumerate().take(i + 1) {
                            out[(i, j)] = val;
                            out[(j, i)] = val;
                        }
                    }
                }
            })?;
        }
        Ok(out)
    }

    /// The whole matrix, dense (tests and small stores).
    pub fn to_dense(&self) -> Result<Mat<f64>> {
        let (nr, nc) = (self.nrows(), self.ncols());
        let symmetric = matches!(self.manifest.shape, StoreShape::Symmetric { .. });
        let mut out = Mat::<f64>::zeros(nr, nc);
        for b in 0..self.n_blocks() {
            let cols = self.block_cols(b);
            self.for_row_chunks(b, TILE_ROWS, |row, chunk| {
                for (di, r) in chunk.chunks(cols).enumerate() {
                    for (j, &val) in r.iter().enumerate() {
                        out[(row + di, j)] = val;
                        if symmetric {
                            out[(j, row + di)] = val;
                        }
                    }
                }
            })?;
        }
        Ok(out)
    }

    /// `Σ_ij A_ij·B_ij` and `Σ_ij B_ij²` over the whole matrices (symmetric: off-diagonal entries
    /// twice), for relative Frobenius distances between stores of the same shape and blocks.
    pub fn frobenius_products(&self, other: &KernelStore) -> Result<FrobeniusSums> {
        assert_eq!(self.manifest.shape, other.manifest.shape);
        assert_eq!(self.manifest.block_rows, other.manifest.block_rows);
        let symmetric = matches!(self.manifest.shape, StoreShape::Symmetric { .. });
        let mut s = FrobeniusSums::default();
        for b in 0..self.n_blocks() {
            let cols = self.block_cols(b);
            let mut mine = Vec::new();
            self.for_row_chunks(b, usize::MAX, |_, c| mine = c.to_vec())?;
            other.for_row_chunks(b, usize::MAX, |row, theirs| {
                for (di, (ra, rb)) in mine.chunks(cols).zip(theirs.chunks(cols)).enumerate() {
                    let i = row + di;
                    let upto = if symmetric { i + 1 } else { cols };
                    for (j, (&a, &bv)) in ra.iter().zip(rb).enumerate().take(upto) {
                        let w = if symmetric && j < i { 2.0 } else { 1.0 };
                        s.aa += w * a * a;
                        s.ab += w * a * bv;
                        s.bb += w * bv * bv;
                    }
                }
            })?;
        }
        Ok(s)
    }

    /// Removes the store's files (a store on disk); nothing for one in memory.
    pub fn remove_files(&self) -> Result<()> {
        if let Backing::Disk(dir) = &self.backing {
            if dir.exists() {
                std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
        }
        Ok(())
    }
}

/// Sums over two matrices' entries, see [`KernelStore::frobenius_products`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FrobeniusSums {
    /// `Σ A²`.
    pub aa: f64,
    /// `Σ A·B`.
    pub ab: f64,
    /// `Σ B²`.
    pub bb: f64,
}

impl FrobeniusSums {
    /// `‖A − B‖_F / ‖B‖_F`.
    pub fn rel_distance(&self) -> f64 {
        ((self.aa - 2.0 * self.ab + self.bb).max(0.0)).sqrt() / self.bb.sqrt()
    }
}

impl StoreManifest {
    /// Rows.
    pub fn nrows(&self) -> usize {
        match self.shape {
            StoreShape::Symmetric { n } => n,
            StoreShape::Rect { nrows, .. } => nrows,
        }
    }

    /// Columns.
    pub fn ncols(&self) -> usize {
        match self.shape {
            StoreShape::Symmetric { n } => n,
            StoreShape::Rect { ncols, .. } => ncols,
        }
    }

    /// Number of row blocks.
    pub fn n_blocks(&self) -> usize {
        self.nrows().div_ceil(self.block_rows)
    }

    /// Rows `[r0, r1)` of block `b`.
    pub fn block_range(&self, b: usize) -> (usize, usize) {
        let r0 = b * self.block_rows;
        (r0, (r0 + self.block_rows).min(self.nrows()))
    }

    /// Columns stored in block `b`.
    pub fn block_cols(&self, b: usize) -> usize {
        match self.shape {
            StoreShape::Symmetric { .. } => self.block_range(b).1,
            StoreShape::Rect { ncols, .. } => ncols,
        }
    }

    /// Entries of block `b`.
    pub fn block_entries(&self, b: usize) -> u64 {
        let (r0, r1) = self.block_range(b);
        (r1 - r0) as u64 * self.block_cols(b) as u64
    }

    /// Bytes of block `b`'s file.
    pub fn block_bytes(&self, b: usize) -> u64 {
        self.block_entries(b) * self.precision.bytes()
    }

    /// Bytes of all blocks.
    pub fn total_bytes(&self) -> u64 {
        (0..self.n_blocks()).map(|b| self.block_bytes(b)).sum()
    }
}

/// Stored entries of a symmetric `n × n` store with blocks of `block_rows` rows (no allocation).
pub fn symmetric_entries(n: u64, block_rows: u64) -> u64 {
    let r = block_rows.max(1);
    let nb = n.div_ceil(r);
    (0..nb)
        .map(|b| {
            let r0 = b * r;
            let r1 = (r0 + r).min(n);
            (r1 - r0) * r1
        })
        .sum()
}

/// File name of the manifest in a store directory.
pub const MANIFEST: &str = "manifest.json";

fn block_path(dir: &Path, b: usize) -> PathBuf {
    dir.join(format!("block-{b:06}.bin"))
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_data().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(n: usize) -> Mat<f64> {
        Mat::from_fn(n, n, |i, j| {
            let (a, b) = (i.min(j) as f64, i.max(j) as f64);
            1.0 / (1.0 + a + 0.5 * b) + if i == j { 2.0 } else { 0.0 }
        })
    }

    fn fill(store: &mut KernelStore, m: &Mat<f64>) {
        for b in 0..store.n_blocks() {
            let (r0, r1) = store.block_range(b);
            let cols = store.block_cols(b);
            let v: Vec<f64> = (r0..r1)
                .flat_map(|i| (0..cols).map(move |j| (i, j)))
                .map(|(i, j)| m[(i, j)])
                .collect();
            store.set_block(b, &v).unwrap();
        }
    }

    #[test]
    fn symmetric_products_columns_and_leading_block_match_the_dense_matrix() {
        let n = 77;
        let m = sym(n);
        let v = Mat::from_fn(n, 3, |i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let want = &m * &v;
        for block in [1, 5, 16, 77, 100] {
            let mut s =
                KernelStore::in_memory(StoreShape::Symmetric { n }, block, StoragePrecision::F64);
            fill(&mut s, &m);
            let got = s.apply(v.as_ref()).unwrap();
            assert!(
                (&got - &want).norm_max() < 1e-12 * want.norm_max(),
                "block {block}"
            );
            let cols = s.columns(&[0, 40, 76]).unwrap();
            for (p, &j) in [0usize, 40, 76].iter().enumerate() {
                for i in 0..n {
                    assert_eq!(cols[(i, p)], m[(i, j)]);
                }
            }
            assert_eq!(s.leading(9).unwrap(), m.submatrix(0, 0, 9, 9).to_owned());
            assert_eq!(
                s.diagonal().unwrap(),
                (0..n).map(|i| m[(i, i)]).collect::<Vec<_>>()
            );
            assert_eq!(s.to_dense().unwrap(), m);
        }
    }

    /// The product against a naive triple loop over the stored (rounded) entries, for every
    /// path (the AVX-512 kernels where the CPU has them, the general one on disk): odd sizes
    /// that leave partial lanes and tiles, both shapes, both precisions, 1 to 23 columns.
    #[test]
    fn products_match_a_naive_loop_on_every_path() {
        for &(n, m_rows, block) in &[(2085usize, 130usize, 700usize), (37, 5, 16)] {
            let full = Mat::from_fn(n, n, |i, j| {
                let (a, b) = (i.min(j) as f64, i.max(j) as f64);
                ((a * 0.37 + b * 0.11).sin() + 0.1) / (1.0 + 0.001 * (a + b))
            });
            let rect = Mat::from_fn(m_rows, n, |i, j| {
                ((i * 13 + j * 7) % 17) as f64 / 17.0 - 0.4
            });
            for precision in [StoragePrecision::F64, StoragePrecision::F32] {
                let round = |x: f64| match precision {
                    StoragePrecision::F64 => x,
                    StoragePrecision::F32 => x as f32 as f64,
                };
                for (shape, dense) in [
                    (StoreShape::Symmetric { n }, &full),
                    (
                        StoreShape::Rect {
                            nrows: m_rows,
                            ncols: n,
                        },
                        &rect,
                    ),
                ] {
                    let mut mem = KernelStore::in_memory(shape, block, precision);
                    fill(&mut mem, dense);
                    let dir = tempfile::tempdir().unwrap();
                    let manifest = StoreManifest {
                        shape,
                        block_rows: block,
                        precision,
                        identity: "test".into(),
                    };
                    let mut disk = KernelStore::on_disk(dir.path(), manifest).unwrap();
                    fill(&mut disk, dense);
                    for c in [1usize, 3, 10, 11, 23] {
                        let v = Mat::from_fn(n, c, |i, j| ((i * 5 + j * 3) % 19) as f64 - 9.0);
                        let want = Mat::from_fn(dense.nrows(), c, |i, k| {
                            (0..n)
                                .map(|j| round(dense[(i, j)]) * v[(j, k)])
                                .sum::<f64>()
                        });
                        let scale = want.norm_max().max(1.0);
                        assert_eq!(
                            mem.apply(v.as_ref()).unwrap(),
                            disk.apply(v.as_ref()).unwrap(),
                            "memory and disk stores differ: {precision:?} {shape:?} c = {c}"
                        );
                        for (name, s) in [("memory", &mem), ("disk", &disk)] {
                            let got = s.apply(v.as_ref()).unwrap();
                            let err = (&got - &want).norm_max();
                            assert!(
                                err < 1e-12 * scale,
                                "{name} {precision:?} {shape:?} c = {c}: {err}"
                            );
                        }
                    }
                }
            }
        }
    }
}
