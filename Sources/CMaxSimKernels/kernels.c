#include "CMaxSimKernels.h"
int tsr_placeholder(void) { return 0; }
