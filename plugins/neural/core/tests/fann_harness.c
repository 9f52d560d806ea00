/* A small driver of libfann (FANN 2.2, float) for neural-core's comparison
 * tests. Commands:
 *   create OUT SEED TYPE HIDDEN_ACT OUTPUT_ACT STEEPNESS L1 L2 ...
 *   run NET INPUTS            (INPUTS: "n k" then n rows of k numbers)
 *   train NET DATA ALGORITHM EPOCHS
 * Numbers are printed with %.9e, one row per line.
 */
#include <fann.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int create(int argc, char **argv) {
	/* argv: [0] harness [1] create [2] OUT [3] SEED [4] TYPE [5] HIDDEN_ACT
	 * [6] OUTPUT_ACT [7] STEEPNESS [8..] layer sizes */
	unsigned int layers[16];
	unsigned int n = argc - 8, i;
	struct fann *ann;
	if (argc < 10 || n > 16) return 2;
	for (i = 0; i < n; i++) layers[i] = atoi(argv[8 + i]);
	srand(atoi(argv[3]));
	if (!strcmp(argv[4], "shortcut")) ann = fann_create_shortcut_array(n, layers);
	else if (!strcmp(argv[4], "sparse")) ann = fann_create_sparse_array(0.6f, n, layers);
	else ann = fann_create_standard_array(n, layers);
	if (!ann) return 3;
	fann_randomize_weights(ann, -1.0f, 1.0f);
	fann_set_activation_function_hidden(ann, atoi(argv[5]));
	fann_set_activation_function_output(ann, atoi(argv[6]));
	fann_set_activation_steepness_hidden(ann, (fann_type) atof(argv[7]));
	fann_set_activation_steepness_output(ann, (fann_type) atof(argv[7]));
	return fann_save(ann, argv[2]) == 0 ? 0 : 4;
}

static int run(char **argv) {
	struct fann *ann = fann_create_from_file(argv[2]);
	FILE *f = fopen(argv[3], "r");
	unsigned int n, k, i, j;
	fann_type *in, *out;
	if (!ann || !f || fscanf(f, "%u %u", &n, &k) != 2) return 3;
	in = malloc(k * sizeof(fann_type));
	for (i = 0; i < n; i++) {
		for (j = 0; j < k; j++) if (fscanf(f, "%f", &in[j]) != 1) return 4;
		out = fann_run(ann, in);
		for (j = 0; j < fann_get_num_output(ann); j++) printf("%.9e ", out[j]);
		printf("\n");
	}
	return 0;
}

static int train(char **argv) {
	struct fann *ann = fann_create_from_file(argv[2]);
	struct fann_train_data *data = fann_read_train_from_file(argv[3]);
	int epochs = atoi(argv[5]), e;
	if (!ann || !data) return 3;
	fann_set_training_algorithm(ann, atoi(argv[4]));
	for (e = 0; e < epochs; e++) printf("%.9e\n", fann_train_epoch(ann, data));
	return 0;
}

int main(int argc, char **argv) {
	if (argc > 2 && !strcmp(argv[1], "create")) return create(argc, argv);
	if (argc == 4 && !strcmp(argv[1], "run")) return run(argv);
	if (argc == 6 && !strcmp(argv[1], "train")) return train(argv);
	fprintf(stderr, "usage: see the comment at the top of fann_harness.c\n");
	return 2;
}
