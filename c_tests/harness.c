int cq4_c_harness_placeholder(void){return 0;}
