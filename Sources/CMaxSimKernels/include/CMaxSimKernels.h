#ifndef TESSERA_CMAXSIMKERNELS_H
#define TESSERA_CMAXSIMKERNELS_H
int tsr_placeholder(void);
#endif
