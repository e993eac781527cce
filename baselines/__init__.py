"""Reference models shown beside the students on the leaderboard.

Random guess, random forest, SVM, XGBoost and a 1D-CNN arrive with the baselines
issue; each follows the scikit-learn estimator contract.
"""
