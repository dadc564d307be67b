export interface LocalSgdPlan {
  /** K: steps between two averagings of the ranks' parameters (1 = per-step gradient averaging) */
  every: number;
  /** per-step averaging for the first E epochs, then every K (post-local SGD) */
  afterEpochs: number;
  /** average the ranks' momentum buffers too; otherwise each rank keeps its own */
  averageOptimizerState: boolean;
}
